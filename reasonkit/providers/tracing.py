"""Provider wrappers the run service adds around a run's provider when the settings ask for them:

- `TracedProvider` (`[tracing] enabled`): one OpenTelemetry CLIENT span per provider call, a child of
  the current step span, with the GenAI attributes (see reasonkit/observability/tracing.py).
- `RedactingProvider` (`[privacy] redact_provider_input`): email addresses, phone numbers, card
  numbers, IBANs and IP addresses in the system prompt and messages are replaced
  (reasonkit/observability/redaction.py) before anything leaves the process.

Both forward everything else to the wrapped provider (`WrapperProvider`) and never close it;
providers/stack.py `for_run` puts them around a run's provider.
"""

from __future__ import annotations

from dataclasses import replace

from reasonkit.errors import ProviderError
from reasonkit.observability import tracing
from reasonkit.observability.redaction import redact_pii
from reasonkit.providers.base import LLMRequest, LLMResponse
from reasonkit.providers.wrapper import WrapperProvider


class TracedProvider(WrapperProvider):
    """One span per provider call (cache hits included, marked `reasonkit.cached`)."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        with tracing.llm_span(self.name, request.model or self.model, request) as span:
            try:
                response = await self.inner.complete(request)
            except ProviderError as exc:
                tracing.end_llm_span(span, error=exc)
                raise
            tracing.end_llm_span(span, response)
            return response

    async def aclose(self) -> None:
        return None  # the wrapped provider is shared (see MeteredProvider.aclose)


class RedactingProvider(WrapperProvider):
    """Sends the request with PII replaced by markers (`[EMAIL]`, `[PHONE]`, ...)."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        messages = [
            {**m, "content": redact_pii(m["content"])} if "content" in m else m for m in request.messages
        ]
        system = redact_pii(request.system) if request.system else request.system
        return await self.inner.complete(replace(request, messages=messages, system=system))

    async def aclose(self) -> None:
        return None
