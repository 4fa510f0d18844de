"""The Redis-shared rate limiter against a real redis-server: two limiters (two replicas) share one
count; Redis going away falls back to the process's own bucket instead of failing requests."""

from __future__ import annotations

from typing import Any

import pytest

from reasonkit.config import load_settings
from reasonkit.server.capacity.rate_limits import RateLimiter
from reasonkit.server.capacity.shared_limits import SharedRateLimiter, hit, shared_limiter
from tests.server.lifecycle.test_replicas import redis_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.anyio


async def test_two_limiters_share_one_count_in_redis(redis_url: str) -> None:  # noqa: F811
    a = SharedRateLimiter(redis_url, local=RateLimiter())
    b = SharedRateLimiter(redis_url, local=RateLimiter())
    waits = [await hit((a, b)[i % 2], "ip:10.0.0.1", 4) for i in range(6)]
    assert waits[:4] == [0.0] * 4
    assert all(0 < w <= 60 for w in waits[4:])
    assert await hit(a, "ip:10.0.0.2", 4) == 0.0  # another client has its own count
    assert a.failures == b.failures == 0
    await a.aclose()
    await b.aclose()


async def test_redis_down_falls_back_to_the_local_bucket() -> None:
    from tests.server.procs import free_port

    limiter = SharedRateLimiter(f"redis://127.0.0.1:{free_port()}/0", local=RateLimiter(), timeout=0.2)
    waits = [await hit(limiter, "ip:10.0.0.3", 2) for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # counted locally: the limit still holds
    assert limiter.failures == 1  # tried once, then not again before retry_secs
    await limiter.aclose()


def test_picked_only_when_redis_is_configured() -> None:
    local = RateLimiter()
    assert shared_limiter(load_settings(environ={}), local) is local
    chosen: Any = shared_limiter(load_settings(environ={"REDIS_URL": "redis://127.0.0.1:1/0"}), local)
    assert isinstance(chosen, SharedRateLimiter) and chosen.local is local
    assert chosen.where == "redis://127.0.0.1:1"
