"""Provider wrappers: one small base that forwards everything to an inner provider (in the style of
pydantic-ai's `WrapperModel`), and the metering wrapper that records every call in the metrics
registry. Wrappers compose: the run service puts `MeteredProvider` around whatever provider a run
uses (the resilient chain, the local model, client sampling)."""

from __future__ import annotations

import time
from typing import Any

from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider


class WrapperProvider(Provider):
    """Forwards `complete`, `aclose` and any other attribute (for example `output_modes`) to `inner`.
    Subclasses override what they add to."""

    def __init__(self, inner: Provider):
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, attr: str) -> Any:
        # Only called for attributes this wrapper does not have itself.
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def unpriced_models(self) -> list[str]:
        return self.inner.unpriced_models()

    def unwrapped(self) -> Provider:
        """The innermost provider."""
        inner = self.inner
        return inner.unwrapped() if isinstance(inner, WrapperProvider) else inner


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
