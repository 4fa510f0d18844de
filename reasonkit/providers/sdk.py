"""The shared base of the providers on the official SDKs: retries, the whole-attempt timeout,
output-mode negotiation and the schema instructions. Anthropic Messages is in `anthropic.py`; OpenAI
Chat Completions (which also covers OpenRouter, Ollama, vLLM, LM Studio and llama.cpp servers through
their OpenAI-compatible base URLs) in `openai_compat.py`: import the classes from there (this module
does not import them, so that neither depends on the other's import order).

SDK retries are turned off (max_retries=0): `with_retries` in base.py is the only retry loop.
How the schema is asked for (the output mode) is negotiated per (provider, base URL, model): see
negotiation.py. Errors are classified from the status AND the body: see errors_http.py (`classify`,
`classify_http`, `error_detail`).
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import anyio

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, PriceTable, Provider, with_retries
from reasonkit.providers.errors_http import classify
from reasonkit.providers.negotiation import (
    NEGOTIATION,
    OPENAI_MODES,
    SCHEMA_IN_PROMPT,
    OutputMode,
    has_json_object,
    resolve_mode,
)

__all__ = [
    "JSON_TEXT_INSTRUCTION",
    "TOOL_DESCRIPTION",
    "TOOL_INSTRUCTION",
]

JSON_TEXT_INSTRUCTION = (
    "Reply with one JSON object and nothing else: no prose, no code fences. "
    "It must validate against this JSON schema:\n<schema>\n{schema}\n</schema>"
)
TOOL_INSTRUCTION = (
    "Answer by calling the function `{name}`. Its arguments are one JSON object that must validate "
    "against this JSON schema:\n<schema>\n{schema}\n</schema>"
)
TOOL_DESCRIPTION = "Record your answer. Fill every field as the schema describes."


class _SDKProvider(Provider):
    base_url: str  # always known: the configured one, the kind's default or the SDK's own
    # The output modes this wire format can use, strongest first (negotiation.py).
    modes: tuple[OutputMode, ...] = OPENAI_MODES
    # Modes whose requests also carry the schema in the system prompt.
    schema_in_prompt: frozenset[str] = SCHEMA_IN_PROMPT

    def __init__(
        self,
        name: str,
        model: str,
        prices: PriceTable,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        *,
        max_retries: int = 3,
        output_mode: str | None = "auto",
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        on_retry: Callable[[ProviderError, int, float], None] | None = None,
    ):
        self.name = name
        self.model = model
        self.prices = prices
        self.max_retries = max_retries
        self.output_mode = output_mode or "auto"
        self.forced_mode = resolve_mode(output_mode, self.modes)  # None: negotiate ("auto")
        # Whole-attempt deadline. The SDK's own timeout bounds each network read, so a reply that
        # trickles in slowly (a byte now and then) would never trip it; this one does.
        self.timeout = timeout
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.on_retry = on_retry  # (error, attempt, delay) before each retry: metrics hook
        client_class = self._client_class()
        self._client: Any = client_class(
            api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=timeout
        )
        self.base_url = str(self._client.base_url).rstrip("/")

    # ---- what the subclasses implement ----

    @staticmethod
    @abstractmethod
    def _client_class() -> Callable[..., Any]:
        """The SDK's async client class, imported inside the method (the SDK loads only when used)."""

    @abstractmethod
    async def _once(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        """One request. `mode` is None when the request has no schema."""

    @abstractmethod
    async def list_models(self, request_timeout: float = 3.0) -> list[str]:
        """The model ids the server lists (GET {base}/models); raises ProviderError."""

    async def aclose(self) -> None:
        await self._client.close()

    # ---- negotiation ----

    def _key(self, request: LLMRequest) -> tuple[str, str, str]:
        return (self.name, self.base_url, request.model or self.model)

    def unpriced_models(self) -> list[str]:
        return [] if self.prices.lookup(self.model) is not None else [self.model]

    def output_modes(self) -> list[dict[str, Any]]:
        """How this provider asks for structured output, per model it has been used with: provider,
        base_url, model, mode, state (untested | works | forced) and the modes that failed."""
        rows = NEGOTIATION.snapshot(self.name, self.base_url)
        if not any(r["model"] == self.model for r in rows):
            rows.insert(
                0,
                {
                    "provider": self.name,
                    "base_url": self.base_url,
                    "model": self.model,
                    "mode": self.forced_mode or self.modes[0],
                    "state": "forced" if self.forced_mode else "untested",
                    "failed": [],
                },
            )
        return rows

    async def _timed(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        if self.timeout is None:
            return await self._once(request, mode)
        try:
            with anyio.fail_after(self.timeout):
                return await self._once(request, mode)
        except TimeoutError:
            raise ProviderError(
                self.name, "timeout", f"no complete reply within {self.timeout:g}s (timeout_secs)"
            ) from None

    async def _attempt(self, request: LLMRequest) -> LLMResponse:
        """One attempt of the retry loop. A rejected output mode moves on to the next mode at once,
        inside the same attempt (a rejection is not a fault to back off from)."""
        if not request.schema:
            return await self._timed(request, None)
        key = self._key(request)
        for _ in range(len(self.modes) + 1):
            mode = NEGOTIATION.mode_for(key, self.modes, self.forced_mode)
            try:
                resp = await self._timed(request, mode)
            except ProviderError as exc:
                if exc.kind != "unsupported":
                    raise
                if self.forced_mode is not None:
                    raise ProviderError(
                        self.name,
                        "unsupported",
                        f'{exc.message}; output_mode = "{mode}" is set for this provider: set it to '
                        f'"auto" to let ReasonKit find a mode the server takes',
                        exc.status,
                    ) from None
                if NEGOTIATION.rejected(key, mode, exc.message) is None:
                    raise
                continue
            self._observe(key, mode, resp)
            return resp
        raise ProviderError(self.name, "unsupported", "no output mode left to try")  # pragma: no cover

    def _observe(self, key: tuple[str, str, str], mode: OutputMode, resp: LLMResponse) -> None:
        """Remember what a reply shows about `mode` (see the rules in negotiation.py)."""
        if self.forced_mode is not None:
            return
        text = resp.text.strip()
        if mode != "prompt" and resp.parsed is None:
            if not text or resp.stop_reason == "max_tokens":
                return  # an empty or cut-off reply proves nothing either way
            if not has_json_object(text):
                NEGOTIATION.ignored(key, mode, f"the reply began {text[:60]!r}")
                return
        NEGOTIATION.worked(key, mode)

    async def _failed(self, exc: Exception, mode: OutputMode | None, model: str) -> ProviderError:
        """The ProviderError for an SDK exception of a request for `model` in output mode `mode`."""
        error = classify(self.name, exc, mode)
        if error.kind == "not_found":
            error = await self._not_found(error, model)
        return error

    async def _not_found(self, exc: ProviderError, model: str) -> ProviderError:
        """A 404 / unknown-model answer -> a message that says the model is unknown and lists the
        server's models (one short GET {base}/models; its failure is ignored)."""
        try:
            models = await self.list_models(request_timeout=3.0)
        except Exception:  # noqa: BLE001 - the listing is a courtesy
            models = None
        if models is not None and model in models:
            msg = (
                f"the server lists model '{model}' but answered {exc.message}: check the base URL "
                f"({self.base_url}; OpenAI-compatible servers usually end in /v1)"
            )
        else:
            msg = f"the server does not know model '{model}' ({exc.message})"
            if models:
                shown = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
                msg += f"; it serves: {shown}"
            elif models is None:
                msg += "; check the model name and the base URL"
        return ProviderError(self.name, "not_found", msg, exc.status)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        resp, attempts = await with_retries(
            lambda: self._attempt(request),
            self.max_retries,
            base_delay=self.retry_base_delay,
            max_delay=self.retry_max_delay,
            on_retry=self.on_retry,
        )
        resp.attempts = attempts
        resp.latency_ms = (time.perf_counter() - started) * 1000
        resp.cost_usd, resp.price_known = self.prices.cost(resp.model, resp.usage)
        return resp

    def _system_for(self, request: LLMRequest, mode: OutputMode | None) -> str | None:
        if mode is None or mode not in self.schema_in_prompt or not request.schema:
            return request.system
        schema = json.dumps(request.schema, indent=2)
        if mode == "tools":
            extra = TOOL_INSTRUCTION.format(name=request.schema_name, schema=schema)
        else:
            extra = JSON_TEXT_INSTRUCTION.format(schema=schema)
        return f"{request.system}\n\n{extra}" if request.system else extra
