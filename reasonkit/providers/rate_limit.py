"""The client-side rate limit of one provider (`requests_per_minute`), and `RateLimitedProvider`,
the wrapper that puts a provider behind it.

Strategies when the limit is hit: `queue` waits (at most `queue_size` waiters), `drop` fails at once,
`fallback` skips to the next provider of the chain (`ProviderSkipped`, reason `rate_limited`), or
fails like `drop` when there is none. A call its provider would refuse anyway (an open circuit
breaker: `Provider.refusal`) does not take a slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aiolimiter import AsyncLimiter

from reasonkit.errors import ProviderError, ProviderSkipped
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.providers.wrapper import WrapperProvider

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics

__all__ = ["ClientRateLimiter", "RateLimitedProvider"]


class ClientRateLimiter:
    """Client-side rate limit of one provider: aiolimiter's leaky bucket (`burst` calls back to back,
    then `requests_per_minute` pacing) plus our strategy and waiting-queue bound."""

    def __init__(
        self,
        provider: str,
        requests_per_minute: int,
        strategy: Literal["queue", "drop", "fallback"] = "queue",
        queue_size: int = 100,
        burst: int = 1,
        metrics: Metrics | None = None,
    ):
        self.provider = provider
        self.rpm = requests_per_minute
        self.strategy = strategy
        self.queue_size = queue_size
        self.metrics = metrics
        self.waiting = 0
        self._bucket = AsyncLimiter(max_rate=burst, time_period=burst * 60.0 / requests_per_minute)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(provider=self.provider, outcome=outcome).inc()

    def describe(self) -> str:
        return f"requests_per_minute = {self.rpm}, strategy = {self.strategy}"

    async def admit(self, can_fall_back: bool) -> bool:
        """True: go ahead (a slot was taken). False: skip to the next provider (strategy fallback).
        Raises a `client_rate_limit` ProviderError when the call must not be sent."""
        if self.waiting == 0 and self._bucket.has_capacity():
            await self._bucket.acquire()  # does not wait: there is capacity
            return True
        if self.strategy == "fallback" and can_fall_back:
            self._count("fallback")
            return False
        if self.strategy in ("drop", "fallback"):
            self._count("dropped")
            why = "" if self.strategy == "drop" else " and no further provider in [llm] fallback_provider"
            raise ProviderError(
                self.provider,
                "client_rate_limit",
                f"client-side rate limit reached ({self.describe()}{why}); the call was not sent",
            )
        if self.waiting >= self.queue_size:
            self._count("queue_full")
            raise ProviderError(
                self.provider,
                "client_rate_limit",
                f"client-side rate limit queue is full ({self.waiting} calls already waiting; "
                f"{self.describe()}, "
                f"queue_size = {self.queue_size}); the call was not sent",
            )
        self._count("queued")
        self.waiting += 1
        try:
            await self._bucket.acquire()
        finally:
            self.waiting -= 1
        return True


class RateLimitedProvider(WrapperProvider):
    """`inner` behind `limiter`. `can_fall_back`: a provider follows this one in the chain (strategy
    `fallback` skips to it instead of failing)."""

    def __init__(self, inner: Provider, limiter: ClientRateLimiter, *, can_fall_back: bool):
        super().__init__(inner)
        self.limiter = limiter
        self.can_fall_back = can_fall_back

    async def complete(self, request: LLMRequest) -> LLMResponse:
        refused = self.inner.refusal()
        if refused is not None:
            raise refused
        if not await self.limiter.admit(can_fall_back=self.can_fall_back):
            detail = f"client-side rate limit reached ({self.limiter.describe()})"
            raise ProviderSkipped(self.name, "client_rate_limit", detail, reason="rate_limited")
        return await self.inner.complete(request)
