"""`CachedProvider`: the response cache (providers/cache.py) in front of one provider of the chain.

It sits outside that provider's breaker and rate limit, so a cached reply is served even while the
provider is refused or limited. The key holds the provider and model that answer, so each provider
of the fallback chain has its own entries; what is cacheable is the cache's rule (temperature 0,
unless `cache_nondeterministic`).
"""

from __future__ import annotations

from typing import Any

from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.providers.cache import ResponseCache, cache_key
from reasonkit.providers.wrapper import WrapperProvider

__all__ = ["CachedProvider"]


class CachedProvider(WrapperProvider):
    """A hit is returned without calling `inner`; a fresh reply is stored. The cache may be shared by
    several providers of the chain (closing it twice is harmless)."""

    def __init__(self, inner: Provider, cache: ResponseCache):
        super().__init__(inner)
        self.cache = cache

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if not self.cache.cacheable(request):
            return await self.inner.complete(request)
        key = cache_key(self.name, request.model or self.model, request)
        hit = await self.cache.get(key)
        if hit is not None:
            return hit
        response = await self.inner.complete(request)
        await self.cache.put(key, response)
        return response

    async def cache_health(self) -> dict[str, Any] | None:
        return await self.cache.health()

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.cache.aclose()
