"""Client-side rate limit per provider: strategies queue (bounded), drop and fallback."""

from __future__ import annotations

from typing import Literal

import anyio
import pytest

from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from tests.fakes.fake_llm import FakeLLM, Reply
from tests.providers.conftest import OK, make_settings, open_provider, request, sample

pytestmark = pytest.mark.anyio
LIMITED = "reasonkit_rate_limited_total"


def limited(
    fake, strategy: Literal["queue", "drop", "fallback"], rpm: int, queue_size: int = 100, api: str = "openai"
):
    s = make_settings(api, fake.openai_base_url if api == "openai" else fake.anthropic_base_url)
    rl = s.llm.rate_limiting
    rl.requests_per_minute, rl.strategy, rl.queue_size = rpm, strategy, queue_size
    return s


async def test_queue_spaces_the_calls(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    m = Metrics()
    async with open_provider(limited(fake_llm, "queue", rpm=600), m) as p:  # one call per 0.1s
        await p.complete(request("warm-up"))  # opens the HTTP connection, so arrival = admission
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(p.complete, request(f"q{i}"))
    times = sorted(r.received_at for r in fake_llm.requests[1:])
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 4 and all(g >= 0.08 for g in gaps), gaps
    assert sample(m, LIMITED, provider="openai", outcome="queued") == 4


async def test_queue_is_bounded_by_queue_size(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    m = Metrics()
    errors: list[ProviderError] = []

    async def call(i: int) -> None:
        try:
            await p.complete(request(f"q{i}"))
        except ProviderError as exc:
            errors.append(exc)

    async with open_provider(limited(fake_llm, "queue", rpm=600, queue_size=1), m) as p:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(call, i)
    # one call goes at once, one waits, three find the queue full
    assert len(fake_llm.requests) == 2 and len(errors) == 3
    for exc in errors:
        assert exc.kind == "client_rate_limit" and not exc.retryable
        assert (
            "rate limit queue is full" in str(exc)
            and "requests_per_minute = 600" in str(exc)
            and "queue_size = 1" in str(exc)
        )
    assert sample(m, LIMITED, provider="openai", outcome="queue_full") == 3


async def test_drop_fails_fast_naming_the_limit(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    m = Metrics()
    # One call a minute: a limiter that waited for the next slot instead of dropping would hold the
    # second call for about 60 s, far past the bounded wait below (no wall-time assertion).
    async with open_provider(limited(fake_llm, "drop", rpm=1, api="anthropic"), m) as p:
        await p.complete(request("first"))
        with anyio.fail_after(20), pytest.raises(ProviderError) as err:
            await p.complete(request("second"))
    assert len(fake_llm.requests) == 1
    assert err.value.kind == "client_rate_limit"
    assert str(err.value) == (
        "anthropic: client-side rate limit reached (requests_per_minute = 1, strategy = drop); "
        "the call was not sent"
    )
    assert sample(m, LIMITED, provider="anthropic", outcome="dropped") == 1


async def test_fallback_strategy_goes_to_the_next_provider(fake_llm):
    with FakeLLM() as fake_b:
        s = make_settings(
            "anthropic", fake_llm.anthropic_base_url, fallback=("openai", fake_b.openai_base_url)
        )
        s.llm.rate_limiting.strategy = "fallback"
        s.llm.providers["anthropic"].requests_per_minute = 60  # only the primary is limited
        fake_llm.default = fake_b.default = lambda req: Reply(json=OK)
        m = Metrics()
        async with open_provider(s, m) as p:
            first = await p.complete(request("first"))
            second = await p.complete(request("second"))
        assert first.provider == "anthropic" and second.provider == "openai"
        assert second.fallbacks == [
            {
                "provider": "anthropic",
                "reason": "rate_limited",
                "detail": "client-side rate limit reached (requests_per_minute = 60, strategy = fallback)",
            }
        ]
        assert len(fake_llm.requests) == 1 and len(fake_b.requests) == 1
        assert sample(m, LIMITED, provider="anthropic", outcome="fallback") == 1
        assert (
            sample(m, "reasonkit_provider_fallbacks_total", provider="anthropic", reason="rate_limited") == 1
        )


async def test_fallback_strategy_without_a_next_provider_fails_clearly(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    async with open_provider(limited(fake_llm, "fallback", rpm=60)) as p:
        await p.complete(request("first"))
        with pytest.raises(ProviderError) as err:
            await p.complete(request("second"))
    assert err.value.kind == "client_rate_limit"
    assert "strategy = fallback and no further provider in [llm] fallback_provider" in str(err.value)


async def test_burst_lets_calls_start_back_to_back(fake_llm):
    fake_llm.default = lambda req: Reply(json=OK)
    s = limited(fake_llm, "drop", rpm=60)
    s.llm.rate_limiting.burst = 3
    async with open_provider(s) as p:
        for i in range(3):
            await p.complete(request(f"q{i}"))
        with pytest.raises(ProviderError, match="rate limit reached"):
            await p.complete(request("fourth"))
