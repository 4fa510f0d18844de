"""`FallbackProvider`: the chain `[default provider, *fallback_provider]` (in the shape of
pydantic-ai's `FallbackModel`).

Each provider of the chain is tried in order until one answers:
- a call a provider declined without sending it (`ProviderSkipped`: circuit open, rate limit with
  strategy `fallback`) moves on, noting the reason;
- a retryable failure (429, 5xx, timeout, connection, malformed reply) that exhausted the
  provider's retries moves on, noting its kind;
- any other error (400, 401, 404, context overflow, a request-validation error even when sent as
  HTTP 500, our own rate limit refusing the call) is raised at once: another provider would not fix
  a bad request or key;
- the last provider's failure is raised, whatever it is.
The reply (or the raised error) lists what was skipped in `fallbacks`; a raised error's message
says what was tried before. Messages and the skip log are scrubbed of every configured secret.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from loguru import logger

from reasonkit.errors import ProviderError, ProviderSkipped
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics

__all__ = ["FallbackProvider", "scrubber"]


def scrubber(secrets: Iterable[str | None]) -> Callable[[str], str]:
    """A function that replaces each secret (keys, the Redis URL; 4 characters or more) by `***`."""
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in known:
            text = text.replace(secret, "***")
        return text

    return scrub


class FallbackProvider(Provider):
    """Tries `providers` in order (see the module docstring). Its name and model are the first's."""

    def __init__(
        self,
        providers: Sequence[Provider],
        metrics: Metrics,
        scrub: Callable[[str], str] = str,
    ):
        if not providers:
            raise ValueError("FallbackProvider needs at least one provider")
        self.providers = list(providers)
        self.metrics = metrics
        self.scrub = scrub
        self.name = self.providers[0].name
        self.model = self.providers[0].model
        self.base_url = self.providers[0].base_url

    def unpriced_models(self) -> list[str]:
        return [model for p in self.providers for model in p.unpriced_models()]

    def output_modes(self) -> list[dict[str, Any]]:
        """How each provider of the chain asks for structured output (providers/negotiation.py),
        for `/health` and `rk providers check`: rows of provider, base_url, model, mode, state."""
        return [row for p in self.providers for row in p.output_modes()]

    def circuits(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for p in self.providers:
            out.update(p.circuits() or {p.name: {"state": "off"}})
        return out

    async def cache_health(self) -> dict[str, Any] | None:
        return await self.providers[0].cache_health()  # one cache serves the whole chain

    async def list_models(self, request_timeout: float = 3.0) -> list[str] | None:
        return await self.providers[0].list_models(request_timeout)

    def _final(self, exc: ProviderError, notes: list[dict[str, str]]) -> ProviderError:
        msg = exc.message
        if exc.attempts > 1:
            msg += f" (gave up after {exc.attempts} attempts)"
        if notes:
            msg += "; tried before: " + "; ".join(f"{n['provider']}: {n['detail']}" for n in notes)
        err = ProviderError(exc.provider, exc.kind, self.scrub(msg), exc.status, exc.retry_after)
        err.attempts = exc.attempts
        err.fallbacks = list(notes)
        err.window, err.prompt_tokens = exc.window, exc.prompt_tokens
        return err

    def _skip(self, notes: list[dict[str, str]], provider: str, reason: str, detail: str) -> None:
        detail = self.scrub(detail)
        notes.append({"provider": provider, "reason": reason, "detail": detail})
        self.metrics.provider_fallbacks.labels(provider=provider, reason=reason).inc()
        logger.info("provider {} skipped ({}): {}", provider, reason, detail)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        notes: list[dict[str, str]] = []
        for i, provider in enumerate(self.providers):
            last = i == len(self.providers) - 1
            # A model name belongs to one provider: fallback providers use their own.
            req = request if i == 0 or request.model is None else dataclasses.replace(request, model=None)
            try:
                response = await provider.complete(req)
            except ProviderSkipped as exc:
                if last:
                    raise self._final(exc, notes) from None
                self._skip(notes, provider.name, exc.reason, exc.message)
                continue
            except ProviderError as exc:
                if not exc.retryable or last:
                    raise self._final(exc, notes) from None
                tries = f" (after {exc.attempts} attempts)" if exc.attempts > 1 else ""
                self._skip(notes, provider.name, exc.kind, exc.message + tries)
                continue
            response.fallbacks = notes
            if response.cached:
                response.latency_ms = (time.perf_counter() - started) * 1000
            return response
        raise AssertionError("unreachable: the last provider either answers or raises")  # pragma: no cover

    async def aclose(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception as exc:  # noqa: BLE001 - close the others regardless
                logger.debug("closing provider {} failed: {}", provider.name, type(exc).__name__)
