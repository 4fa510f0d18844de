"""OpenAI Chat Completions on the official SDK (`AsyncOpenAI`): OpenAI itself, OpenRouter, and any
OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp `llama-server`, llama-cpp-python) by
its base URL. How the schema is asked for is negotiated (negotiation.py):

- `json_schema`: `response_format: {"type": "json_schema", "json_schema": {name, schema, strict}}`
- `json_object`: `response_format: {"type": "json_object", "schema": schema}` + schema in the prompt
- `tools`: one function with the schema as `parameters`, forced by `tool_choice`; its arguments are
  parsed into `LLMResponse.parsed` + schema in the prompt
- `prompt`: the schema in the system prompt only; the JSON is taken from the text by the engine.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from loguru import logger

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, StopReason, Usage
from reasonkit.providers.errors_http import classify
from reasonkit.providers.grammar import without_max_length
from reasonkit.providers.negotiation import OPENAI_MODES, OutputMode
from reasonkit.providers.openai_stream import INTERRUPTING, interrupted, read_stream
from reasonkit.providers.sdk import TOOL_DESCRIPTION, _SDKProvider

if TYPE_CHECKING:
    from openai import AsyncOpenAI


# `owned_by` of the models a llama-cpp-python server lists (one request at a time, see `_serial`)
SERIAL_OWNER = "me"
SERIAL_PROBE_TIMEOUT = 1.0  # seconds: a local server lists its models at once


class OpenAIProvider(_SDKProvider):
    _client: AsyncOpenAI
    modes = OPENAI_MODES
    _probed = False  # whether the server was asked if it is serial (`_serial`)
    _probe_lock: anyio.Lock | None = None
    _slot: anyio.Lock | None = None  # held for each call to a serial server

    @functools.cached_property
    def streams(self) -> bool:
        """Whether every reply streams: a server on this machine or the local network (Ollama,
        llama.cpp, LM Studio, vLLM), where small models that loop run and streaming costs nothing,
        so the repetition guard can cut a loop. Hosted APIs stream only a watched reply."""
        return on_local_network(self.base_url)

    @staticmethod
    def _client_class() -> type[AsyncOpenAI]:
        from openai import AsyncOpenAI

        return AsyncOpenAI

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """A call, one at a time when the server answers one request at a time (`_serial`)."""
        slot = await self._serial()
        if slot is None:
            return await super().complete(request)
        async with slot:
            return await super().complete(request)

    async def _serial(self) -> anyio.Lock | None:
        """A lock for a server that answers one request at a time, else None; asked once, on the
        first call (a configured model still builds without a request). llama-cpp-python's server
        (`python -m llama_cpp.server`) runs one model object behind one lock: a run's parallel calls
        queued there and, each with its own timeout, timed out waiting (a `quick` run's 12 GigaThink
        perspectives). It lists its models as owned by "me". Hosted APIs are never asked."""
        if self._probed or not on_local_network(self.base_url):
            return self._slot
        self._probe_lock = self._probe_lock or anyio.Lock()
        async with self._probe_lock:
            if not self._probed:
                # a server that does not list (or lists slowly) is not known to be serial
                with anyio.move_on_after(SERIAL_PROBE_TIMEOUT), contextlib.suppress(ProviderError):
                    await self.list_models(request_timeout=SERIAL_PROBE_TIMEOUT)
                self._probed = True
        return self._slot

    def _note_owners(self, owners: list[str | None]) -> None:
        """What a model listing says about the server (see `_serial`), the first time one is seen."""
        if self._probed or not on_local_network(self.base_url):
            return
        self._probed = True
        if SERIAL_OWNER in owners:
            self._slot = anyio.Lock()
            logger.info(
                "the server at {} is llama-cpp-python's, which answers one request at a time: "
                "ReasonKit sends it one call at a time",
                self.base_url,
            )

    async def list_models(self, request_timeout: float = 3.0) -> list[str]:
        import openai

        try:
            page = await self._client.with_options(timeout=request_timeout).models.list()
        except (openai.APIError, ValueError) as exc:
            raise classify(self.name, exc) from None
        self._note_owners([getattr(m, "owned_by", None) for m in page.data])
        return [m.id for m in page.data]

    def _wire_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema as sent. A server on this machine or the local network (llama.cpp,
        llama-cpp-python, Ollama, vLLM) turns it into a grammar, and llama-cpp-python's grammar nests
        one rule per character a string may hold: GigaThink's 4,200-character answer gave "failed
        to parse grammar" and the server died. Lengths only size the call (engine/sizing.py), so
        `maxLength` stays off the wire there; hosted APIs get the schema as it is."""
        return without_max_length(schema) if on_local_network(self.base_url) else schema

    def _mode_kwargs(self, request: LLMRequest, mode: OutputMode | None) -> dict[str, Any]:
        if request.schema is None or mode in (None, "prompt"):
            return {}
        schema = self._wire_schema(request.schema)
        if mode == "json_schema":
            spec = {"name": request.schema_name, "schema": schema, "strict": False}
            return {"response_format": {"type": "json_schema", "json_schema": spec}}
        if mode == "json_object":
            # `schema` is the extension of llama-cpp-python and llama.cpp; other servers ignore it.
            return {"response_format": {"type": "json_object", "schema": schema}}
        function = {
            "name": request.schema_name,
            "description": TOOL_DESCRIPTION,
            "parameters": schema,
        }
        return {
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": request.schema_name}},
        }

    async def _once(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        import openai

        model = request.model or self.model
        messages: list[dict[str, str]] = []
        system = self._system_for(request, mode)
        if system:
            messages.append({"role": "system", "content": system})
        messages += request.messages
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        kwargs.update(self._mode_kwargs(request, mode))
        if (request.on_text is not None or self.streams) and self.base_url not in INTERRUPTING:
            streamed = await self._streamed(request, mode, kwargs)  # see openai_stream.py
            if streamed is not None:
                return streamed
        try:
            resp = await self._client.chat.completions.create(**kwargs)
        except (openai.APIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON
            raise await self._failed(exc, mode, model) from None
        if not resp.choices or resp.choices[0].message is None:
            raise ProviderError(self.name, "bad_response", "the reply has no choices")
        choice = resp.choices[0]
        text = choice.message.content or ""
        parsed: dict[str, Any] | None = None
        calls = (choice.message.tool_calls or []) if mode == "tools" else []
        for call in calls:
            function = getattr(call, "function", None)
            if function is None or function.name != request.schema_name:
                continue
            text, parsed = _arguments(function.arguments)
            break
        usage = _usage(resp.usage, 0)
        stop: StopReason = "max_tokens" if choice.finish_reason == "length" else "end"
        return LLMResponse(
            text,
            parsed,
            stop,
            usage,
            self.name,
            resp.model or model,
            structured="json_text" if mode == "prompt" else "native",
            output_mode=mode,
        )

    async def _streamed(
        self, request: LLMRequest, mode: OutputMode | None, kwargs: dict[str, Any]
    ) -> LLMResponse | None:
        """The reply, streamed; None when the server ended the stream before the reply did."""
        import openai

        stream_kwargs = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
        try:
            stream = await self._client.chat.completions.create(**stream_kwargs)
            reply = await read_stream(stream, request.on_text)
        except (openai.APIError, ValueError) as exc:
            raise await self._failed(exc, mode, kwargs["model"]) from None
        if not reply.events:  # a 200 whose body is no event stream (an error page, broken JSON)
            raise ProviderError(
                self.name, "bad_response", "the server sent a response that is not valid for its API"
            )
        if reply.finish_reason is None and not reply.looping:
            interrupted(self.base_url)
            return None  # asked again without streaming
        text, parsed = reply.text, None
        if mode == "tools":
            for index, name in reply.names.items():
                if name == request.schema_name:
                    text, parsed = _arguments(reply.arguments.get(index, ""))
                    break
        usage = _usage(reply.usage, reply.chunks)
        stop: StopReason = "max_tokens" if reply.finish_reason == "length" else "end"
        if reply.looping:
            stop = "repetition"
        return LLMResponse(
            text,
            parsed,
            stop,
            usage,
            self.name,
            reply.model or kwargs["model"],
            structured="json_text" if mode == "prompt" else "native",
            output_mode=mode,
        )


def on_local_network(base_url: str) -> bool:
    """The URL's host is this machine or a private network address."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _usage(reported: Any, output: int) -> Usage:
    """A reply's usage block (cached tokens are inside `prompt_tokens`); without one, `output`
    tokens and an unknown (0) prompt."""
    cached = 0
    if reported is not None and reported.prompt_tokens_details is not None:
        cached = reported.prompt_tokens_details.cached_tokens or 0
    return Usage(
        input=max(0, (reported.prompt_tokens if reported else 0) - cached),
        output=reported.completion_tokens if reported else output,
        cache_read=cached,
    )


def _arguments(arguments: str | None) -> tuple[str, dict[str, Any] | None]:
    """A forced tool call's arguments: (their text, the object; None when broken, for the engine to
    extract or repair from the text)."""
    text = arguments or ""
    try:
        value = json.loads(text)
    except ValueError:
        return text, None
    return text, value if isinstance(value, dict) else None
