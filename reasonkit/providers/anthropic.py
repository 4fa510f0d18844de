"""Anthropic Messages on the official SDK (`AsyncAnthropic`), also for Anthropic-compatible servers
(`ANTHROPIC_BASE_URL`). Structured output: a forced tool whose `input_schema` is the schema; when a
server rejects tools, the schema goes into the system prompt instead (`prompt` mode)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, StopReason, Usage
from reasonkit.providers.errors_http import classify
from reasonkit.providers.negotiation import ANTHROPIC_MODES, OutputMode
from reasonkit.providers.sdk import TOOL_DESCRIPTION, _SDKProvider

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic


class AnthropicProvider(_SDKProvider):
    _client: AsyncAnthropic
    modes = ANTHROPIC_MODES
    # The forced tool is native here: only `prompt` mode puts the schema in the system prompt.
    schema_in_prompt = frozenset({"prompt"})

    @staticmethod
    def _client_class() -> type[AsyncAnthropic]:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic

    async def list_models(self, request_timeout: float = 3.0) -> list[str]:
        import anthropic

        try:
            page = await self._client.with_options(timeout=request_timeout).models.list(limit=100)
        except (anthropic.APIError, ValueError) as exc:
            raise classify(self.name, exc) from None
        return [m.id for m in page.data]

    async def _once(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        import anthropic

        model = request.model or self.model
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": request.messages,
        }
        system = self._system_for(request, mode)
        if system:
            kwargs["system"] = system
        # No temperature: the Messages API of SDK 2.x has no sampling-temperature parameter.
        if request.schema and mode == "tools":
            kwargs["tools"] = [
                {"name": request.schema_name, "description": TOOL_DESCRIPTION, "input_schema": request.schema}
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": request.schema_name}
        try:
            msg = await self._client.messages.create(**kwargs)
        except (anthropic.APIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON
            raise await self._failed(exc, mode, model) from None
        parsed: dict[str, Any] | None = None
        texts: list[str] = []
        for block in msg.content or []:
            if getattr(block, "type", None) == "tool_use" and isinstance(getattr(block, "input", None), dict):
                parsed = dict(block.input)
            elif getattr(block, "type", None) == "text":
                texts.append(block.text)
        text = json.dumps(parsed, ensure_ascii=False) if parsed is not None else "".join(texts)
        reported = msg.usage
        if reported is None:
            raise ProviderError(self.name, "bad_response", "the reply has no usage block")
        usage = Usage(
            input=reported.input_tokens or 0,
            output=reported.output_tokens or 0,
            cache_read=getattr(reported, "cache_read_input_tokens", None) or 0,
            cache_write=getattr(reported, "cache_creation_input_tokens", None) or 0,
        )
        stop: StopReason = "max_tokens" if msg.stop_reason == "max_tokens" else "end"
        return LLMResponse(
            text,
            parsed,
            stop,
            usage,
            self.name,
            msg.model or model,
            structured="json_text" if mode == "prompt" else "native",
            output_mode=mode,
        )
