"""The in-memory response cache (LRU + TTL): keys, what is cached, metrics, health."""

from __future__ import annotations

import anyio
import pytest

from reasonkit.observability.metrics import Metrics
from reasonkit.providers import LLMRequest
from reasonkit.providers.cache import cache_health, cache_key
from tests.fakes.fake_llm import Reply
from tests.providers.conftest import OK, base_url, make_settings, open_provider, request, sample

pytestmark = pytest.mark.anyio
HITS, MISSES = "reasonkit_cache_hits_total", "reasonkit_cache_misses_total"


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_identical_temperature_zero_requests_are_served_from_memory(fake_llm, api):
    fake_llm.push(Reply(json=OK, usage={"input": 100, "output": 20}))
    m = Metrics()
    async with open_provider(
        make_settings(
            api,
            base_url(fake_llm, api),
            LLM_DEFAULT_MODEL="claude-haiku-4-5" if api == "anthropic" else "gpt-4o-mini",
        ),
        m,
    ) as p:
        first = await p.complete(request())
        second = await p.complete(request())
    assert len(fake_llm.requests) == 1
    assert not first.cached and first.cost_usd > 0 and first.usage.input == 100
    assert second.cached and second.cache_layer == "memory" and second.attempts == 0
    assert (
        second.cost_usd == 0
        and second.usage.total == 0
        and second.text == first.text
        and second.parsed == first.parsed
    )
    assert second.provider == api and second.model == first.model
    assert sample(m, HITS, layer="memory") == 1 and sample(m, MISSES, layer="memory") == 1


async def test_nondeterministic_requests_are_cached_only_when_configured(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    s = make_settings("anthropic", fake_llm.anthropic_base_url)
    m = Metrics()
    async with open_provider(s, m) as p:
        for t in (0.7, 0.7, None, None):
            r = await p.complete(request(temperature=t))
            assert not r.cached
    assert len(fake_llm.requests) == 4 and sample(m, MISSES, layer="memory") == 0  # not even looked up
    s.llm.cache.cache_nondeterministic = True
    async with open_provider(s) as p:
        await p.complete(request(temperature=0.7))
        assert (await p.complete(request(temperature=0.7))).cached
    assert len(fake_llm.requests) == 5


async def test_entries_expire_after_the_ttl(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    s = make_settings("openai", fake_llm.openai_base_url)
    s.llm.cache.ttl_secs = 0.2
    async with open_provider(s) as p:
        await p.complete(request())
        assert (await p.complete(request())).cached
        await anyio.sleep(0.25)
        assert not (await p.complete(request())).cached
    assert len(fake_llm.requests) == 2


async def test_lru_keeps_max_entries(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    s = make_settings("openai", fake_llm.openai_base_url)
    s.llm.cache.max_entries = 2
    async with open_provider(s) as p:
        for q in ("a", "b", "a", "c"):  # "a" was used recently, so "b" is evicted by "c"
            await p.complete(request(q))
        assert (await p.complete(request("a"))).cached
        assert not (await p.complete(request("b"))).cached
    assert len(fake_llm.requests) == 4


def test_the_key_covers_every_part_of_the_request():
    base = LLMRequest(
        messages=[{"role": "user", "content": "x"}],
        system="s",
        schema={"type": "object"},
        temperature=0,
        max_tokens=100,
    )
    k = cache_key("openai", "m", base)
    assert k == cache_key("openai", "m", LLMRequest(**{**base.__dict__, "temperature": 0.0}))
    variants = [
        cache_key("anthropic", "m", base),
        cache_key("openai", "m2", base),
        *(
            cache_key("openai", "m", LLMRequest(**{**base.__dict__, field: value}))
            for field, value in [
                ("messages", [{"role": "user", "content": "y"}]),
                ("system", "t"),
                ("schema", {"type": "array"}),
                ("schema_name", "other"),
                ("temperature", 0.5),
                ("max_tokens", 101),
            ]
        ),
    ]
    assert len({k, *variants}) == len(variants) + 1


async def test_cache_off_and_health(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    s = make_settings("openai", fake_llm.openai_base_url, ENABLE_CACHE="false")
    async with open_provider(s) as p:
        assert await p.cache_health() is None  # no cache in the chain
        await p.complete(request())
        assert not (await p.complete(request())).cached
    assert await cache_health(s) is None
    s = make_settings("openai", fake_llm.openai_base_url)
    async with open_provider(s) as p:
        assert await p.cache_health() == {
            "status": "healthy",
            "backend": "memory",
            "latency_ms": 0.0,
            "error": None,
        }
        health = await cache_health(s)
        assert health is not None and health["status"] == "healthy"
