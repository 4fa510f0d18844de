"""Providers on the official SDKs: Anthropic Messages and OpenAI Chat Completions (which also covers
OpenRouter, Ollama, vLLM and llama.cpp servers through their OpenAI-compatible base URLs).

SDK retries are turned off (max_retries=0): `with_retries` in base.py is the only retry loop.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import anyio

from reasonkit.providers.base import (
    LLMRequest,
    LLMResponse,
    PriceTable,
    Provider,
    ProviderError,
    StopReason,
    Usage,
    parse_retry_after,
    with_retries,
)

JSON_TEXT_INSTRUCTION = (
    "Reply with one JSON object and nothing else: no prose, no code fences. "
    "It must validate against this JSON schema:\n<schema>\n{schema}\n</schema>"
)


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 409, 425, 429):
        return "rate_limit" if status == 429 else "server"
    if status >= 500:
        return "server"
    return "bad_request"


def classify(provider: str, exc: Exception) -> ProviderError:
    """Turn an SDK exception into a ProviderError with a message that carries no secrets."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int):
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        detail = ""
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            err = body.get("error", body)
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                detail = err["message"][:300]
        kind = _status_kind(status)
        hint = {
            "auth": " (check the API key for this provider)",
            "not_found": " (check the model name and base URL)",
        }.get(kind, "")
        return ProviderError(provider, kind, f"HTTP {status}{': ' + detail if detail else ''}{hint}", status, retry_after)  # type: ignore[arg-type]
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(provider, "timeout", "the request timed out")
    if "Connection" in name:
        return ProviderError(provider, "connection", "the connection failed or was reset (is the base URL right and the server up?)")
    if "ResponseValidation" in name or isinstance(exc, json.JSONDecodeError | ValueError):
        return ProviderError(provider, "bad_response", "the server sent a response that is not valid for its API")
    return ProviderError(provider, "other", f"{name}")


class _SDKProvider(Provider):
    def __init__(
        self,
        name: str,
        model: str,
        prices: PriceTable,
        max_retries: int = 3,
        structured_output: str = "auto",
        timeout: float | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        on_retry: Callable[[ProviderError, int, float], None] | None = None,
    ):
        self.name = name
        self.model = model
        self.prices = prices
        self.max_retries = max_retries
        self.structured_output = structured_output
        # Whole-attempt deadline. The SDK's own timeout bounds each network read, so a reply that
        # trickles in slowly (a byte now and then) would never trip it; this one does.
        self.timeout = timeout
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.on_retry = on_retry  # (error, attempt, delay) before each retry: metrics hook
        # "auto" starts native and switches to json_text if the server rejects native schemas.
        self._json_text = structured_output == "json_text"

    @abstractmethod
    async def _once(self, request: LLMRequest, json_text: bool) -> LLMResponse: ...

    async def _timed(self, request: LLMRequest, json_text: bool) -> LLMResponse:
        if self.timeout is None:
            return await self._once(request, json_text)
        try:
            with anyio.fail_after(self.timeout):
                return await self._once(request, json_text)
        except TimeoutError:
            raise ProviderError(self.name, "timeout", f"no complete reply within {self.timeout:g}s (timeout_secs)") from None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()

        async def attempt() -> LLMResponse:
            try:
                return await self._timed(request, self._json_text)
            except ProviderError as exc:
                # A server without json_schema support answers 400; fall back to JSON in text once.
                if exc.kind == "bad_request" and self.structured_output == "auto" and not self._json_text and request.schema:
                    self._json_text = True
                    return await self._timed(request, True)
                raise

        resp, attempts = await with_retries(
            attempt, self.max_retries, base_delay=self.retry_base_delay, max_delay=self.retry_max_delay, on_retry=self.on_retry
        )
        resp.attempts = attempts
        resp.latency_ms = (time.perf_counter() - started) * 1000
        resp.cost_usd, resp.price_known = self.prices.cost(resp.model, resp.usage)
        return resp

    @staticmethod
    def _system_for(request: LLMRequest, json_text: bool) -> str | None:
        if json_text and request.schema:
            extra = JSON_TEXT_INSTRUCTION.format(schema=json.dumps(request.schema, indent=2))
            return f"{request.system}\n\n{extra}" if request.system else extra
        return request.system


class AnthropicProvider(_SDKProvider):
    def __init__(self, name: str, model: str, prices: PriceTable, api_key: str | None, base_url: str | None, timeout: float, **kw: Any):
        super().__init__(name, model, prices, timeout=timeout, **kw)
        from anthropic import AsyncAnthropic

        self._client = AsyncAnthropic(api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=timeout)

    async def _once(self, request: LLMRequest, json_text: bool) -> LLMResponse:
        import anthropic

        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_tokens,
            "messages": request.messages,
        }
        system = self._system_for(request, json_text)
        if system:
            kwargs["system"] = system
        # No temperature: the Messages API of SDK 2.x has no sampling-temperature parameter.
        if request.schema and not json_text:
            kwargs["tools"] = [
                {
                    "name": request.schema_name,
                    "description": "Record your answer. Fill every field as the schema describes.",
                    "input_schema": request.schema,
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": request.schema_name}
        try:
            msg = await self._client.messages.create(**kwargs)
        except (anthropic.APIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON
            raise classify(self.name, exc) from None
        parsed: dict[str, Any] | None = None
        texts: list[str] = []
        for block in msg.content or []:
            if getattr(block, "type", None) == "tool_use" and isinstance(getattr(block, "input", None), dict):
                parsed = dict(block.input)
            elif getattr(block, "type", None) == "text":
                texts.append(block.text)
        text = json.dumps(parsed, ensure_ascii=False) if parsed is not None else "".join(texts)
        u = msg.usage
        if u is None:
            raise ProviderError(self.name, "bad_response", "the reply has no usage block")
        usage = Usage(
            input=u.input_tokens or 0,
            output=u.output_tokens or 0,
            cache_read=getattr(u, "cache_read_input_tokens", None) or 0,
            cache_write=getattr(u, "cache_creation_input_tokens", None) or 0,
        )
        stop: StopReason = "max_tokens" if msg.stop_reason == "max_tokens" else "end"
        return LLMResponse(text, parsed, stop, usage, self.name, msg.model or kwargs["model"], structured="json_text" if json_text else "native")

    async def aclose(self) -> None:
        await self._client.close()


class OpenAIProvider(_SDKProvider):
    def __init__(self, name: str, model: str, prices: PriceTable, api_key: str | None, base_url: str | None, timeout: float, **kw: Any):
        super().__init__(name, model, prices, timeout=timeout, **kw)
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=timeout)

    async def _once(self, request: LLMRequest, json_text: bool) -> LLMResponse:
        import openai

        messages: list[dict[str, str]] = []
        system = self._system_for(request, json_text)
        if system:
            messages.append({"role": "system", "content": system})
        messages += request.messages
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.schema and not json_text:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.schema, "strict": False},
            }
        try:
            resp = await self._client.chat.completions.create(**kwargs)
        except (openai.APIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON
            raise classify(self.name, exc) from None
        if not resp.choices or resp.choices[0].message is None:
            raise ProviderError(self.name, "bad_response", "the reply has no choices")
        choice = resp.choices[0]
        text = choice.message.content or ""
        u = resp.usage
        cached = 0
        if u is not None and u.prompt_tokens_details is not None:
            cached = u.prompt_tokens_details.cached_tokens or 0
        usage = Usage(
            input=max(0, (u.prompt_tokens if u else 0) - cached),
            output=u.completion_tokens if u else 0,
            cache_read=cached,
        )
        stop: StopReason = "max_tokens" if choice.finish_reason == "length" else "end"
        return LLMResponse(text, None, stop, usage, self.name, resp.model or kwargs["model"], structured="json_text" if json_text else "native")

    async def aclose(self) -> None:
        await self._client.close()
