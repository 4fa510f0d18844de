"""Per-client rate limits shared by every replica through Redis (`[database.redis] url` / REDIS_URL).

With Redis configured, `[security] rate_limit_per_minute` holds for a client across all replicas: at
most N requests in any 60-second window (the `limits` library's moving window in Redis), where each
replica alone would let the client through N times. Without Redis each process keeps its own token
bucket (rate_limits.py).

Redis failing never fails requests: a Redis call that errors or takes longer than
`[database.redis] timeout_secs` falls back to the process's own bucket, for `retry_secs`, then Redis
is tried again (the same policy as the response cache). The fallback is logged once per outage.
"""

from __future__ import annotations

import inspect
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
from loguru import logger

KEY_PREFIX = "reasonkit:ratelimit"


class SharedRateLimiter:
    """`hit(key, per_minute)` like RateLimiter's, but counted in Redis (awaitable)."""

    def __init__(
        self,
        url: str,
        *,
        local: Any,
        timeout: float = 0.5,
        retry_secs: float = 5.0,
        key_prefix: str = KEY_PREFIX,
    ):
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        self.local = local  # the process's own bucket, used while Redis is down
        self.timeout = timeout
        self.retry_secs = retry_secs
        self.where = _redact(url)
        self.storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=key_prefix,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.down_until = 0.0  # time.monotonic() before which Redis is not tried
        self.failures = 0

    async def hit(self, key: str, per_minute: int) -> float:
        """Take one request for `key`: 0.0 when allowed, else seconds until the next one is."""
        from limits import RateLimitItemPerMinute

        if time.monotonic() < self.down_until:
            return float(self.local.hit(key, per_minute))
        item = RateLimitItemPerMinute(per_minute)
        try:
            with anyio.fail_after(self.timeout * 2):
                if await self.strategy.hit(item, key):
                    return 0.0
                stats = await self.strategy.get_window_stats(item, key)
        except Exception as exc:  # noqa: BLE001 - Redis down or slow: count locally for a while
            self.failures += 1
            self.down_until = time.monotonic() + self.retry_secs
            logger.warning(
                "shared rate limit: Redis at {} failed ({}); counting per process for {:g}s",
                self.where,
                type(exc).__name__,
                self.retry_secs,
            )
            return float(self.local.hit(key, per_minute))
        return max(0.01, float(stats.reset_time) - time.time())

    async def aclose(self) -> None:
        """Close the Redis connections (a server process just exits; tests close)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()


def shared_limiter(settings: Any, local: Any) -> Any:
    """A SharedRateLimiter when `[database.redis] url` is set (falling back to `local`), else `local`."""
    secret = settings.database.redis.url
    url = secret.get_secret_value().strip() if secret is not None else ""
    if not url:
        return local
    redis = settings.database.redis
    try:
        return SharedRateLimiter(url, local=local, timeout=redis.timeout_secs, retry_secs=redis.retry_secs)
    except Exception as exc:  # noqa: BLE001 - e.g. a URL scheme limits does not know: stay per process
        logger.warning("shared rate limit unavailable ({}); counting per process", type(exc).__name__)
        return local


async def hit(limiter: Any, key: str, per_minute: int) -> float:
    """`limiter.hit(key, per_minute)` for either kind of limiter (the shared one is awaitable)."""
    wait = limiter.hit(key, per_minute)
    if inspect.isawaitable(wait):
        wait = await wait
    return float(wait)


def _redact(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{parts.scheme}://{host}:{parts.port or 6379}"
    except ValueError:
        return "<redis>"
