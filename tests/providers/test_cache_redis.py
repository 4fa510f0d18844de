"""The Redis layer of the response cache, against a real `redis-server`: shared by replicas, an
outage degrades to memory (one warning, health entry, metrics) and Redis is used again when back."""

from __future__ import annotations

import anyio
import pytest

from reasonkit.observability.metrics import Metrics
from reasonkit.providers.cache import cache_health
from tests.fakes.fake_llm import Reply
from tests.providers.conftest import (
    OK,
    REDIS_PASSWORD,
    closed_port,
    make_settings,
    open_provider,
    request,
    sample,
)

pytestmark = pytest.mark.anyio
HITS, MISSES = "reasonkit_cache_hits_total", "reasonkit_cache_misses_total"
UP, ERRORS = "reasonkit_cache_backend_up", "reasonkit_cache_errors_total"


def redis_settings(fake, url: str):
    s = make_settings("openai", fake.openai_base_url, REDIS_URL=url, ENABLE_CACHE="true")
    s.database.redis.retry_secs = 0.3
    s.database.redis.timeout_secs = 0.5
    return s


def warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("WARNING|") and "Redis" in line]


async def test_redis_is_shared_survives_an_outage_and_is_used_again(fake_llm, redis_server, log_lines):
    fake_llm.default = lambda req: Reply(json=OK)
    s = redis_settings(fake_llm, redis_server.url)
    ma, mb = Metrics(), Metrics()
    async with open_provider(s, ma) as a, open_provider(s, mb) as b:  # two replicas
        # Shared: replica B gets replica A's answer from Redis.
        first = await a.complete(request("q1"))
        shared = await b.complete(request("q1"))
        assert not first.cached and shared.cached and shared.cache_layer == "redis"
        assert len(fake_llm.requests) == 1 and redis_server.dbsize() == 1
        assert sample(mb, MISSES, layer="memory") == 1 and sample(mb, HITS, layer="redis") == 1
        assert (await b.complete(request("q1"))).cache_layer == "memory"  # now in B's L1 too
        health = await cache_health(s)
        assert health is not None and health["status"] == "healthy" and health["backend"] == "redis+memory"
        assert health["error"] is None and health["latency_ms"] >= 0

        # Outage: calls still succeed, from memory or from the provider.
        redis_server.kill()
        assert (await a.complete(request("q1"))).cache_layer == "memory"
        for q in ("q2", "q3", "q2"):
            r = await b.complete(request(q))
        assert r.cached and r.cache_layer == "memory"  # q2 again: B's memory layer still works
        assert len(fake_llm.requests) == 3
        health = await cache_health(s)
        assert health is not None and health["status"] == "degraded" and health["backend"] == "memory"
        assert health["error"] and health["endpoint"].startswith("127.0.0.1:")
        # One warning per replica and outage (B noticed on a call, A on the health check's PING) ...
        assert len(warnings(log_lines)) == 2, log_lines
        for q in ("q5", "q6", "q7"):
            await b.complete(request(q))
        await anyio.sleep(0.35)  # ... and none for later failed retries, calls or health checks
        await b.complete(request("q8"))
        await cache_health(s)
        assert len(warnings(log_lines)) == 2, log_lines
        assert "unreachable" in warnings(log_lines)[0] and "in-memory cache only" in warnings(log_lines)[0]
        assert sample(mb, UP, layer="redis") == 0 and sample(mb, ERRORS, layer="redis") >= 1

        # Back: after retry_secs the cache writes to and reads from Redis again.
        redis_server.start()
        await anyio.sleep(0.35)
        await b.complete(request("q9"))
        assert redis_server.dbsize() == 1  # q9 (the restarted server had nothing)
        again = await a.complete(request("q9"))
        assert again.cached and again.cache_layer == "redis"
        assert len(fake_llm.requests) == 8
        assert sample(mb, UP, layer="redis") == 1
        assert any(line.startswith("INFO|") and "reachable again" in line for line in log_lines)
        health = await cache_health(s)
        assert health is not None and health["status"] == "healthy"
    text = "\n".join(log_lines) + repr(health)
    assert REDIS_PASSWORD not in text and redis_server.url not in text


async def test_redis_down_from_the_start_never_fails_calls(fake_llm, log_lines):
    fake_llm.default = lambda req: Reply(json=OK)
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0"
    s = redis_settings(fake_llm, url)
    m = Metrics()
    async with open_provider(s, m) as p:
        await p.complete(request())
        again = await p.complete(request())
        assert again.cached and again.cache_layer == "memory"
        health = await p.cache_health()
        assert health is not None and health["status"] == "degraded"
        assert "Connection" in health["error"] or "refused" in health["error"]
    assert len(fake_llm.requests) == 1 and len(warnings(log_lines)) == 1
    assert REDIS_PASSWORD not in "\n".join(log_lines) + repr(health)
    # No provider in the process: cache_health(settings) probes Redis itself, quietly.
    probe = await cache_health(s)
    assert probe is not None and probe["status"] == "degraded" and len(warnings(log_lines)) == 1


async def test_health_probe_without_a_live_provider(redis_server, fake_llm):
    s = redis_settings(fake_llm, redis_server.url)
    health = await cache_health(s)
    assert health is not None and health["status"] == "healthy" and health["backend"] == "redis+memory"
