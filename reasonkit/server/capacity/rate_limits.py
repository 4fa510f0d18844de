"""The per-client request rate limit of one process: a token bucket per client (bearer token, else
IP), `[security] rate_limit_per_minute` of capacity, refilled continuously. The HTTP gate's
`ClientRateLimit` rule asks it; with Redis configured the count is shared by every replica instead
(shared_limits.py), with this bucket as the fallback while Redis is away."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_RATE_KEYS = 10_000  # buckets kept at most (one per client seen): a flood of clients cannot grow it


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per client: `per_minute` requests of capacity, refilled continuously."""

    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def hit(self, key: str, per_minute: int) -> float:
        """Take one request for `key`; 0.0 when allowed, else seconds until the next one is."""
        now = self.clock()
        rate = per_minute / 60.0
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) >= MAX_RATE_KEYS:
                self._prune(now, rate, per_minute)
            b = self.buckets[key] = _Bucket(float(per_minute), now)
        b.tokens = min(float(per_minute), b.tokens + (now - b.at) * rate)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate

    def _prune(self, now: float, rate: float, cap: int) -> None:
        full = [k for k, b in self.buckets.items() if b.tokens + (now - b.at) * rate >= cap]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= MAX_RATE_KEYS:  # still full: forget the oldest half
            for k in sorted(self.buckets, key=lambda k: self.buckets[k].at)[: MAX_RATE_KEYS // 2]:
                del self.buckets[k]
