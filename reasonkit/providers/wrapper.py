"""`WrapperProvider`: the base of every provider that wraps another (in the shape of pydantic-ai's
`models/wrapper.py` `WrapperModel`).

It forwards the whole `Provider` interface to `inner`, method by method: a wrapper overrides what
it adds to and inherits the rest. There is no `__getattr__` fallback, so what a wrapper exposes is
what `Provider` declares; anything a caller needs from a provider belongs on `Provider` (with a
default), not on one class that callers reach through the wrappers.
"""

from __future__ import annotations

from typing import Any

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider

__all__ = ["WrapperProvider"]


class WrapperProvider(Provider):
    """Forwards every `Provider` method to `inner`. Subclasses override what they add to."""

    def __init__(self, inner: Provider):
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.base_url = inner.base_url

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def refusal(self) -> ProviderError | None:
        return self.inner.refusal()

    async def list_models(self, request_timeout: float = 3.0) -> list[str] | None:
        return await self.inner.list_models(request_timeout)

    async def cache_health(self) -> dict[str, Any] | None:
        return await self.inner.cache_health()

    def circuits(self) -> dict[str, dict[str, Any]]:
        return self.inner.circuits()

    def unpriced_models(self) -> list[str]:
        return self.inner.unpriced_models()

    def output_modes(self) -> list[dict[str, Any]]:
        return self.inner.output_modes()
