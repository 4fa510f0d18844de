"""The metering wrapper: records every provider call in the metrics registry. The run service puts
it around whatever provider a run uses (the resilient chain, the local model, client sampling);
see providers/stack.py for the whole chain."""

from __future__ import annotations

import time

from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.providers.wrapper import WrapperProvider


class MeteredProvider(WrapperProvider):
    """Records latency, tokens, cost and errors of every provider call. Replies served by the response
    cache are not calls (no tokens): the cache metrics count them."""

    def __init__(self, inner: Provider, metrics: Metrics):
        super().__init__(inner)
        self.metrics = metrics

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.monotonic()
        try:
            response = await self.inner.complete(request)
        except ProviderError as exc:
            elapsed = time.monotonic() - started
            self.metrics.observe_provider_call(exc.provider or self.name, elapsed, error_type=exc.kind)
            raise
        if response.cached:
            return response
        self.metrics.observe_provider_call(
            response.provider or self.name,
            time.monotonic() - started,
            usage=response.usage.as_dict(),
            cost_usd=response.cost_usd,
        )
        return response

    async def aclose(self) -> None:
        # The run service wraps a provider it does not own (the server keeps one for its lifetime):
        # closing the wrapper must not close the shared provider.
        return None


def metered(provider: Provider, metrics: Metrics) -> Provider:
    """`provider` with metering, unless it is metered already."""
    return provider if isinstance(provider, MeteredProvider) else MeteredProvider(provider, metrics)
