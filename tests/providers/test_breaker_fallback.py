"""Circuit breaker transitions and the fallback chain (two fake servers), for both wire formats."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from reasonkit.engine import Engine
from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.breaker import CircuitBreaker
from reasonkit.providers.stack import build_provider
from tests.fakes.fake_llm import FakeLLM, Reply
from tests.fakes.schemas import schema
from tests.providers.conftest import (
    ANTHROPIC_KEY,
    OK,
    OTHER,
    base_url,
    breaker_of,
    make_settings,
    open_provider,
    request,
    sample,
)

pytestmark = pytest.mark.anyio
APIS = ["anthropic", "openai"]
STATE = "reasonkit_circuit_breaker_state"


def watch(breaker: CircuitBreaker | None) -> list[str]:
    """Record the breaker's transitions (in addition to its metric hook)."""
    assert breaker is not None
    seen: list[str] = [breaker.state]
    hook = breaker.on_change

    def on_change(provider: str, state: str) -> None:
        seen.append(state)
        if hook:
            hook(provider, state)  # type: ignore[arg-type]

    breaker.on_change = on_change
    return seen


async def wait_for(cond, limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not cond():  # noqa: ASYNC110 - polling the fake server's request log
            await anyio.sleep(0.005)


@pytest.mark.parametrize("api", APIS)
async def test_breaker_closed_open_half_open_closed(fake_llm, api):
    s = make_settings(api, base_url(fake_llm, api))
    ps = s.llm.providers[api]
    ps.max_retries, ps.breaker_threshold, ps.breaker_cooldown_secs = 0, 3, 0.3
    m = Metrics()
    async with open_provider(s, m) as p:
        seen = watch(breaker_of(p))
        assert sample(m, STATE, provider=api) == 0
        fake_llm.push(*[Reply(status=503)] * 3)
        for i in range(3):
            with pytest.raises(ProviderError) as err:
                await p.complete(request(f"q{i}"))
            assert err.value.kind == "server"
        assert seen == ["closed", "open"] and sample(m, STATE, provider=api) == 2
        # Open: refused at once, the provider is not contacted (a call that waited out the cooldown
        # would have gone through as the half-open trial: a fourth request, a half_open state).
        with pytest.raises(ProviderError) as err:
            await p.complete(request("refused"))
        assert len(fake_llm.requests) == 3 and seen == ["closed", "open"]
        assert err.value.kind == "circuit_open" and not err.value.retryable
        assert "circuit breaker open after 3 consecutive failed calls (last: HTTP 503" in str(err.value)
        # After the cooldown one trial call goes through (half-open); others are still refused.
        await anyio.sleep(0.35)
        fake_llm.push(Reply(json=OK, delay=0.3))
        results: list[object] = []

        async def trial() -> None:
            results.append(await p.complete(request("trial")))

        async with anyio.create_task_group() as tg:
            tg.start_soon(trial)
            await wait_for(lambda: len(fake_llm.requests) == 4)
            assert sample(m, STATE, provider=api) == 1
            with pytest.raises(ProviderError) as busy:
                await p.complete(request("during the trial"))
            assert busy.value.kind == "circuit_open" and "trial call is in progress" in str(busy.value)
        assert len(results) == 1 and len(fake_llm.requests) == 4
        assert seen == ["closed", "open", "half_open", "closed"] and sample(m, STATE, provider=api) == 0
        # A failed trial opens it again.
        fake_llm.push(*[Reply(status=503)] * 4)
        for i in range(3):
            with pytest.raises(ProviderError):
                await p.complete(request(f"again {i}"))
        await anyio.sleep(0.35)
        with pytest.raises(ProviderError) as failed_trial:
            await p.complete(request("failing trial"))
        assert failed_trial.value.kind == "server"
        assert seen[-3:] == ["open", "half_open", "open"] and sample(m, STATE, provider=api) == 2
        with pytest.raises(ProviderError) as again:
            await p.complete(request("refused again"))
        assert again.value.kind == "circuit_open" and len(fake_llm.requests) == 8


async def test_a_cancelled_trial_frees_the_half_open_slot(fake_llm):
    s = make_settings("openai", fake_llm.openai_base_url)
    ps = s.llm.providers["openai"]
    ps.max_retries, ps.breaker_threshold, ps.breaker_cooldown_secs = 0, 1, 0.1
    async with open_provider(s) as p:
        fake_llm.push(Reply(status=500), Reply(json=OK, delay=5), Reply(json=OK))
        with pytest.raises(ProviderError):
            await p.complete(request("a"))
        await anyio.sleep(0.15)
        with anyio.move_on_after(0.2):
            await p.complete(request("cancelled trial"))
        breaker = breaker_of(p)
        assert breaker is not None and breaker.state == "half_open"
        r = await p.complete(request("next trial"))
        assert r.attempts == 1 and breaker.state == "closed"


@pytest.mark.parametrize("primary", APIS)
async def test_fallback_chain_when_retries_are_exhausted_then_when_the_breaker_is_open(fake_llm, primary):
    other = OTHER[primary]
    with FakeLLM() as fake_b:
        s = make_settings(primary, base_url(fake_llm, primary), fallback=(other, base_url(fake_b, other)))
        s.llm.providers[primary].max_retries = 1
        m = Metrics()
        async with open_provider(s, m) as p:
            assert [leg.name for leg in p.providers] == [primary, other]
            fake_llm.push(*[Reply(status=503)] * 6)
            fake_b.default = lambda req: Reply(json=OK)
            for i in range(3):
                r = await p.complete(request(f"q{i}", temperature=0.5))
                assert r.provider == other
                assert r.fallbacks == [
                    {"provider": primary, "reason": "server", "detail": r.fallbacks[0]["detail"]}
                ]
                assert (
                    "HTTP 503" in r.fallbacks[0]["detail"] and "after 2 attempts" in r.fallbacks[0]["detail"]
                )
            assert len(fake_llm.requests) == 6 and len(fake_b.requests) == 3
            assert sample(m, STATE, provider=primary) == 2
            assert sample(m, "reasonkit_provider_fallbacks_total", provider=primary, reason="server") == 3
            # Breaker open: the primary is skipped without a request.
            r = await p.complete(request("q3", temperature=0.5))
            assert r.provider == other and r.fallbacks[0]["reason"] == "circuit_open"
            assert len(fake_llm.requests) == 6 and len(fake_b.requests) == 4
            assert (
                sample(m, "reasonkit_provider_fallbacks_total", provider=primary, reason="circuit_open") == 1
            )
            # Everything down: one error naming both providers.
            fake_b.default = lambda req: Reply(status=500, text="b is down too")
            with pytest.raises(ProviderError) as err:
                await p.complete(request("q4", temperature=0.5))
    msg = str(err.value)
    assert msg.startswith(f"{other}: HTTP 500") and "b is down too" in msg
    assert f"tried before: {primary}: circuit breaker open" in msg
    assert err.value.fallbacks[0]["provider"] == primary
    assert ANTHROPIC_KEY not in msg


async def test_no_fallback_for_errors_another_provider_cannot_fix(fake_llm):
    with FakeLLM() as fake_b:
        s = make_settings(
            "anthropic", fake_llm.anthropic_base_url, fallback=("openai", fake_b.openai_base_url)
        )
        fake_llm.push(Reply(status=401, error_type="authentication_error"))
        async with open_provider(s) as p:
            with pytest.raises(ProviderError) as err:
                await p.complete(request())
        assert err.value.kind == "auth" and len(fake_b.requests) == 0


async def test_fallback_uses_its_own_model_and_missing_fallback_config_is_loud(fake_llm):
    with FakeLLM() as fake_b:
        s = make_settings(
            "anthropic",
            fake_llm.anthropic_base_url,
            fallback=("openai", fake_b.openai_base_url),
            LLM_DEFAULT_MODEL="claude-haiku-4-5",
        )
        fake_llm.push(Reply(status=503), Reply(status=503), Reply(status=503), Reply(status=503))
        fake_b.push(Reply(json=OK))
        async with open_provider(s) as p:
            r = await p.complete(request(model="claude-haiku-4-5"))
        assert fake_llm.requests[0].model == "claude-haiku-4-5"
        assert r.provider == "openai" and fake_b.requests[0].model == "gpt-4.1-mini"
    s = make_settings("openai", fake_llm.openai_base_url)
    s.llm.fallback_provider = ["openrouter"]
    with pytest.raises(
        NoProviderConfigured,
        match=r"fallback provider 'openrouter' \(from \[llm\] fallback_provider\) is listed but has no "
        r"API key",
    ):
        build_provider(s, metrics=Metrics())


PROTOCOL = (
    """
id = "one"
name = "One"
description = "one step"
result = { step = "s", field = "answer" }
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "s"
kind = "generate"
prompt = "Q: {{ inputs.query }}{{#if inputs.context}} {{ inputs.context }}{{/if}}"
output = """
    + schema(answer="string")
    + "\n"
)


async def test_the_engine_trace_records_the_fallback_and_the_cache(fake_llm, tmp_path: Path):
    (tmp_path / "one.toml").write_text(PROTOCOL)
    reg = load_registry([tmp_path], include_builtin=False)
    assert not reg.problems, reg.problems
    with FakeLLM() as fake_b:
        s = make_settings(
            "anthropic", fake_llm.anthropic_base_url, fallback=("openai", fake_b.openai_base_url)
        )
        s.llm.providers["anthropic"].max_retries = 0
        fake_llm.default = lambda req: Reply(status=529)
        fake_b.default = lambda req: Reply(json={"answer": "from b", "confidence": 0.9})
        async with open_provider(s) as p:
            engine = Engine(reg, p, temperature=0.0)
            first = await engine.run_protocol("one", {"query": "why?"})
            second = await engine.run_protocol("one", {"query": "why?"})
    call = first.all_steps()[0].calls[0]
    assert first.answer == "from b" and call.provider == "openai" and not call.cached
    assert call.fallbacks[0]["provider"] == "anthropic" and call.fallbacks[0]["reason"] == "server"
    again = second.all_steps()[0].calls[0]
    assert second.answer == "from b" and again.cached and again.cache_layer == "memory"
    assert again.cost_usd == 0 and again.tokens.input == 0 and again.provider == "openai"
    assert again.fallbacks[0]["provider"] == "anthropic"  # the primary was tried (and failed) again
    assert len(fake_b.requests) == 1


async def test_secrets_echoed_by_a_server_never_reach_errors_or_traces(fake_llm):
    with FakeLLM() as fake_b:
        s = make_settings(
            "anthropic", fake_llm.anthropic_base_url, fallback=("openai", fake_b.openai_base_url)
        )
        s.llm.providers["anthropic"].max_retries = 0
        fake_llm.default = lambda req: Reply(status=503, text=f"overloaded for key {ANTHROPIC_KEY}")
        fake_b.push(Reply(json=OK), Reply(status=500, text=f"also {ANTHROPIC_KEY}"))
        s.llm.providers["openai"].max_retries = 0
        async with open_provider(s) as p:
            r = await p.complete(request("a", temperature=0.5))
            with pytest.raises(ProviderError) as err:
                await p.complete(request("b", temperature=0.5))
    assert r.provider == "openai" and "overloaded for key ***" in r.fallbacks[0]["detail"]
    assert ANTHROPIC_KEY not in repr(r.fallbacks) + str(err.value) + repr(err.value.fallbacks)
