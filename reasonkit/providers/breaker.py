"""The circuit breaker, one per provider of the chain, and `BreakerProvider`, the wrapper that puts
a provider behind it.

The breaker counts calls, not attempts: a call that needed retries but succeeded is a success, and
with the defaults (3 retries, threshold 3) a dead provider costs three calls of four attempts each
before it is skipped. Only retryable failures (429, 5xx, timeout, connection, malformed reply) count;
a 4xx answer shows the provider is up. Half-open lets exactly one trial call through; other calls
meanwhile are treated as open. A cancelled trial frees the slot for the next call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from reasonkit.errors import ProviderError, ProviderSkipped
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.providers.wrapper import WrapperProvider

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics

__all__ = ["BreakerProvider", "BreakerState", "CircuitBreaker", "breaker_hook"]

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

    def health(self) -> dict[str, Any]:
        """What `/health` shows for this breaker."""
        entry: dict[str, Any] = {"state": self.state, "failures": self.failures}
        if self.state == "open":
            entry["retry_in_secs"] = round(self.retry_in(), 1)
        return entry


class BreakerProvider(WrapperProvider):
    """`inner` behind `breaker`: a call the breaker refuses raises `ProviderSkipped` (`circuit_open`)
    without being sent; every call it lets through reports its verdict back."""

    def __init__(
        self,
        inner: Provider,
        breaker: CircuitBreaker,
        metrics: Metrics,
        scrub: Callable[[str], str] = str,
    ):
        super().__init__(inner)
        self.breaker = breaker
        self.scrub = scrub  # the breaker's last error may quote a reply: keep secrets out of the log
        metrics.set_breaker_state(self.name, breaker.state)

    def _open(self) -> ProviderSkipped:
        return ProviderSkipped(self.name, "circuit_open", self.breaker.describe(), reason="circuit_open")

    def refusal(self) -> ProviderError | None:
        return None if self.breaker.would_allow() else self._open()

    def circuits(self) -> dict[str, dict[str, Any]]:
        return {self.breaker.provider: self.breaker.health()}

    async def complete(self, request: LLMRequest) -> LLMResponse:
        breaker = self.breaker
        if not breaker.allow():  # open, or another call holds the half-open trial
            raise self._open()
        try:
            response = await self.inner.complete(request)
        except ProviderError as exc:
            before = breaker.state
            breaker.record(exc)
            if breaker.state == "open" and before != "open":
                logger.warning("provider {}: {}", self.name, self.scrub(breaker.describe()))
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record(None)
        return response


def breaker_hook(metrics: Metrics) -> Callable[[str, BreakerState], None]:
    """`on_change` of the breakers: the state gauge, and a log line (opening is logged with its
    reason by `BreakerProvider`)."""

    def hook(provider: str, state: BreakerState) -> None:
        metrics.set_breaker_state(provider, state)
        if state != "open":
            logger.info("provider {}: circuit breaker {}", provider, state.replace("_", "-"))

    return hook
