"""The provider-call cap: one process keeps at most `[server] max_inflight_provider_calls` LLM calls
in flight, whatever the number of runs; the others wait their turn (their run's deadline still
applies while they wait). The server wraps the provider it owns with `LimitedProvider`."""

from __future__ import annotations

import anyio

from reasonkit.observability.metrics import Metrics
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.providers.wrapper import WrapperProvider


class LimitedProvider(WrapperProvider):
    """`inner` behind a shared `anyio.CapacityLimiter`; waiting calls show in
    `reasonkit_provider_calls_waiting`."""

    def __init__(self, inner: Provider, limiter: anyio.CapacityLimiter, metrics: Metrics | None = None):
        super().__init__(inner)
        self.limiter = limiter
        self.metrics = metrics

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self.limiter.available_tokens >= 1 or self.metrics is None:
            async with self.limiter:
                return await self.inner.complete(request)
        gauge = self.metrics.provider_calls_waiting
        gauge.inc()
        try:
            await self.limiter.acquire()
        finally:
            gauge.dec()
        try:
            return await self.inner.complete(request)
        finally:
            self.limiter.release()
