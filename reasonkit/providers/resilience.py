"""Resilience around the providers: circuit breaker, client-side rate limit, fallback chain, cache.

`build_provider` returns a `ResilientProvider`; the engine only sees the `Provider` interface.
One call goes through the chain `[default provider, *fallback_provider]`; for each provider:

1. response cache lookup (its own key: the provider and model are part of it);
2. circuit breaker: open -> skip to the next provider (reason `circuit_open`);
3. client-side rate limit (`requests_per_minute`): `queue` waits (at most `queue_size` waiters),
   `drop` fails at once, `fallback` skips to the next provider (reason `rate_limited`);
4. the provider's own call: our one retry loop (`with_retries`: backoff with jitter, `Retry-After`)
   with a whole-attempt timeout, in `sdk.py`; inside one attempt a rejected output mode moves on to
   the next mode at once (negotiation.py), so a rejection never costs a retry;
5. success -> breaker closed, reply cached, returned with `fallbacks` listing what was skipped;
   a retryable failure (429, 5xx, timeout, connection, malformed reply) that exhausted the retries
   counts against the breaker and moves on to the next provider; any other error (400, 401, 404,
   context overflow, a request-validation error even when sent as HTTP 500) is raised at once:
   another provider would not fix a bad request or key, and it does not count against the breaker
   (the server did answer).

The breaker counts calls, not attempts: a call that needed retries but succeeded is a success, and
with the defaults (3 retries, threshold 3) a dead provider costs three calls of four attempts each
before it is skipped. Half-open lets exactly one trial call through; other calls meanwhile are
treated as open. A cancelled trial frees the slot for the next call.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from aiolimiter import AsyncLimiter
from loguru import logger

from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, ProviderError
from reasonkit.providers.cache import ResponseCache, cache_key

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics

BreakerState = Literal["closed", "half_open", "open"]


class CircuitBreaker:
    """Per-provider breaker: closed -> open after `threshold` consecutive failed calls -> half-open
    after `cooldown` seconds (one trial call) -> closed on its success, open again on its failure."""

    def __init__(
        self,
        provider: str,
        threshold: int = 3,
        cooldown: float = 60.0,
        on_change: Callable[[str, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.provider = provider
        self.threshold = threshold
        self.cooldown = cooldown
        self.on_change = on_change
        self.clock = clock
        self.state: BreakerState = "closed"
        self.failures = 0  # consecutive failed calls
        self.opened_at = 0.0
        self.last_error = ""
        self._trial = False  # a half-open trial call is in flight

    def _set(self, state: BreakerState) -> None:
        if state != self.state:
            self.state = state
            if self.on_change:
                self.on_change(self.provider, state)

    def retry_in(self) -> float:
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def would_allow(self) -> bool:
        """Whether `allow()` would let a call through now (reserves nothing)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return self.retry_in() <= 0
        return not self._trial

    def allow(self) -> bool:
        """Let a call through? In half-open only one (the trial) until it reports back."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.retry_in() > 0:
                return False
            self._set("half_open")
        if self._trial:
            return False
        self._trial = True
        return True

    def record(self, error: ProviderError | None) -> None:
        """The verdict of an allowed call: None = success. Only retryable (server-side) errors are
        failures; a 4xx answer shows the provider is up, so it counts like a success."""
        self._trial = False
        if error is None or not error.retryable:
            self.failures = 0
            self._set("closed")
            return
        self.failures += 1
        self.last_error = error.message
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.threshold):
            self.opened_at = self.clock()
            self._set("open")

    def release(self) -> None:
        """An allowed call ended without a verdict (cancelled): free the trial slot."""
        self._trial = False

    def describe(self) -> str:
        if self.state == "half_open":
            return "circuit breaker half-open: a trial call is in progress"
        last = f" (last: {self.last_error})" if self.last_error else ""
        return (
            f"circuit breaker open after {self.failures} consecutive failed calls{last}; "
            f"next trial call in {self.retry_in():.1f}s"
        )


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


@dataclasses.dataclass
class Leg:
    """One provider of the chain with its breaker and rate limiter."""

    provider: Provider
    breaker: CircuitBreaker | None = None
    limiter: ClientRateLimiter | None = None


class ResilientProvider(Provider):
    """The provider the engine gets from `build_provider`: cache, breaker, rate limit and the
    fallback chain around the configured providers (see the module docstring).

    Attributes not defined here (for example `_client`) are read from the default provider."""

    def __init__(
        self,
        legs: Sequence[Leg],
        cache: ResponseCache | None = None,
        metrics: Metrics | None = None,
        secrets: Iterable[str | None] = (),
    ):
        if not legs:
            raise ValueError("ResilientProvider needs at least one provider")
        from reasonkit.observability.metrics import default_metrics

        self.legs = list(legs)
        self.cache = cache
        self.metrics = metrics or default_metrics()
        self.name = self.legs[0].provider.name
        self.model = self.legs[0].provider.model
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        for leg in self.legs:
            if leg.breaker is not None:
                self.metrics.set_breaker_state(leg.provider.name, leg.breaker.state)

    @property
    def primary(self) -> Provider:
        return self.legs[0].provider

    def __getattr__(self, attr: str) -> Any:
        # Only called for attributes not found normally; keeps `provider._client` & co. working.
        if attr.startswith("__") or attr == "legs":
            raise AttributeError(attr)
        return getattr(self.legs[0].provider, attr)

    def unpriced_models(self) -> list[str]:
        return [model for leg in self.legs for model in leg.provider.unpriced_models()]

    def output_modes(self) -> list[dict[str, Any]]:
        """How each provider of the chain asks for structured output (providers/negotiation.py),
        for `/health` and `rk providers check`: rows of provider, base_url, model, mode, state."""
        rows: list[dict[str, Any]] = []
        for leg in self.legs:
            rows.extend(leg.provider.output_modes())
        return rows

    def breaker_states(self) -> dict[str, str]:
        return {leg.provider.name: leg.breaker.state for leg in self.legs if leg.breaker is not None}

    async def cache_health(self) -> dict[str, Any] | None:
        """This provider's response cache health (see cache.cache_health), None without a cache."""
        return None if self.cache is None else await self.cache.health()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _final(self, exc: ProviderError, notes: list[dict[str, str]]) -> ProviderError:
        msg = exc.message
        if exc.attempts > 1:
            msg += f" (gave up after {exc.attempts} attempts)"
        if notes:
            msg += "; tried before: " + "; ".join(f"{n['provider']}: {n['detail']}" for n in notes)
        err = ProviderError(exc.provider, exc.kind, self._scrub(msg), exc.status, exc.retry_after)
        err.attempts = exc.attempts
        err.fallbacks = list(notes)
        return err

    def _skip(self, notes: list[dict[str, str]], provider: str, reason: str, detail: str) -> None:
        detail = self._scrub(detail)
        notes.append({"provider": provider, "reason": reason, "detail": detail})
        self.metrics.provider_fallbacks.labels(provider=provider, reason=reason).inc()
        logger.info("provider {} skipped ({}): {}", provider, reason, detail)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        notes: list[dict[str, str]] = []
        cacheable = self.cache is not None and self.cache.cacheable(request)
        for i, leg in enumerate(self.legs):
            p, br = leg.provider, leg.breaker
            last = i == len(self.legs) - 1
            # A model name belongs to one provider: fallback providers use their own.
            req = request if i == 0 or request.model is None else dataclasses.replace(request, model=None)
            key = cache_key(p.name, req.model or p.model, req) if cacheable else None
            if key is not None and self.cache is not None:
                hit = await self.cache.get(key)
                if hit is not None:
                    hit.fallbacks = notes
                    hit.latency_ms = (time.perf_counter() - started) * 1000
                    return hit
            if br is not None and not br.would_allow():
                if last:
                    raise self._final(ProviderError(p.name, "circuit_open", br.describe()), notes)
                self._skip(notes, p.name, "circuit_open", br.describe())
                continue
            if leg.limiter is not None:
                try:
                    admitted = await leg.limiter.admit(can_fall_back=not last)
                except ProviderError as exc:
                    raise self._final(exc, notes) from None
                if not admitted:
                    self._skip(
                        notes,
                        p.name,
                        "rate_limited",
                        f"client-side rate limit reached ({leg.limiter.describe()})",
                    )
                    continue
            if br is not None and not br.allow():  # another call took the half-open trial meanwhile
                if last:
                    raise self._final(ProviderError(p.name, "circuit_open", br.describe()), notes)
                self._skip(notes, p.name, "circuit_open", br.describe())
                continue
            try:
                resp = await p.complete(req)
            except ProviderError as exc:
                if br is not None:
                    before = br.state
                    br.record(exc)
                    if br.state == "open" and before != "open":
                        logger.warning("provider {}: {}", p.name, self._scrub(br.describe()))
                if not exc.retryable or last:
                    raise self._final(exc, notes) from None
                tries = f" (after {exc.attempts} attempts)" if exc.attempts > 1 else ""
                self._skip(notes, p.name, exc.kind, exc.message + tries)
                continue
            except BaseException:
                if br is not None:
                    br.release()
                raise
            if br is not None:
                br.record(None)
            resp.fallbacks = notes
            if key is not None and self.cache is not None:
                await self.cache.put(key, resp)
            return resp
        raise AssertionError("unreachable: the last provider either answers or raises")  # pragma: no cover

    async def aclose(self) -> None:
        for leg in self.legs:
            try:
                await leg.provider.aclose()
            except Exception as exc:  # noqa: BLE001 - close the others regardless
                logger.debug("closing provider {} failed: {}", leg.provider.name, type(exc).__name__)
        if self.cache is not None:
            await self.cache.aclose()


def retry_hook(metrics: Metrics, provider: str) -> Callable[[ProviderError, int, float], None]:
    """`on_retry` of the SDK providers: counts retries by error type and logs them."""

    def hook(exc: ProviderError, attempt: int, delay: float) -> None:
        metrics.provider_retries.labels(provider=provider, type=exc.kind).inc()
        logger.debug(
            "provider {}: attempt {} failed ({}), retrying in {:.2f}s", provider, attempt, exc.kind, delay
        )

    return hook


def breaker_hook(metrics: Metrics) -> Callable[[str, BreakerState], None]:
    def hook(provider: str, state: BreakerState) -> None:
        metrics.set_breaker_state(provider, state)
        if state != "open":  # opening is logged with its reason by the caller
            logger.info("provider {}: circuit breaker {}", provider, state.replace("_", "-"))

    return hook
