"""The Engine facade end to end against the fake LLM server, through the real SDK providers: runs,
concurrency, budgets, cancellation, events, input validation."""

from __future__ import annotations

import dataclasses

import anyio
import pytest

from reasonkit.engine import Budget, Event
from reasonkit.errors import InputError
from tests.engine._scripted import by_prompt
from tests.fakes.fake_llm import Reply, schema_filler

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_protocol_runs_and_explains_confidence(make_engine, fake_llm, provider):
    fake_llm.default = by_prompt(
        {
            "A:": {"note": "from a", "confidence": 0.9},
            "B:": {"note": "from b", "confidence": 0.7},
            "JOIN": {"answer": "joined answer", "confidence": 0.8},
        }
    )
    engine = make_engine(provider)
    r = await engine.run_protocol("linear", {"query": "why?", "context": "some background"})
    assert r.status == "complete" and r.complete
    assert r.answer == "joined answer"
    # weighted mean (0.9 + 0.7 + 2*0.8) / 4 = 0.8, minus 0.5 * weighted std-dev
    sd = ((0.01 + 0.01 + 0) / 4) ** 0.5
    assert r.confidence == pytest.approx(0.8 - 0.5 * sd)
    signals = [f.signal for f in r.confidence_breakdown]
    assert signals == ["weighted_mean", "contradiction"]
    assert sum(f.delta for f in r.confidence_breakdown) == pytest.approx(r.confidence)
    # optional context reached the prompt; each step has a trace
    a = next(s for s in r.all_steps() if s.step_id == "a")
    assert "<context>some background</context>" in a.prompt
    assert a.raw_response and a.output == {"note": "from a", "confidence": 0.9}
    assert a.tokens.input > 0 and a.provider == provider
    assert r.tokens.input == sum(s.tokens.input for s in r.all_steps())


async def test_independent_steps_overlap(make_engine, fake_llm):
    fake_llm.default = by_prompt({}, delay=0.3)
    engine = make_engine()
    await engine.run_protocol("linear", {"query": "q"})
    a, b, join = fake_llm.requests
    # a and b were both in flight before either finished; join started after both finished
    assert max(a.received_at, b.received_at) < min(a.finished_at, b.finished_at)
    assert join.received_at >= max(a.finished_at, b.finished_at)
    assert fake_llm.max_concurrent == 2


async def test_token_budget_stops_scheduling(make_engine, fake_llm):
    fake_llm.default = lambda req: dataclasses.replace(
        schema_filler(req), usage={"input": 500, "output": 100}
    )
    r = await make_engine(max_concurrency=1).run_protocol(
        "linear", {"query": "q"}, budget=Budget(tokens=1000)
    )
    # after a and b (1200 tokens) the join step is not started
    assert len(fake_llm.requests) == 2
    assert not r.complete and r.status == "incomplete"
    assert "token budget" in r.stop_reason
    join = next(s for s in r.all_steps() if s.step_id == "join")
    assert join.status == "skipped" and "token budget" in join.error


async def test_time_budget_returns_partial_and_cancels_in_flight(make_engine, fake_llm):
    fake_llm.default = by_prompt({"A:": {"note": "fast", "confidence": 0.9}}, delay=0.0)
    fake_llm.push(
        Reply(json={"note": "fast", "confidence": 0.9}),
        Reply(json={"note": "slow", "confidence": 0.9}, delay=5),
    )
    engine = make_engine(max_concurrency=1)
    with anyio.fail_after(4):
        r = await engine.run_protocol("linear", {"query": "q"}, budget=Budget(seconds=0.8))
    assert not r.complete and r.status == "incomplete"
    assert "time budget" in r.stop_reason
    assert {s.step_id: s.status for s in r.all_steps()} == {"a": "ok", "b": "cancelled", "join": "skipped"}
    assert r.confidence < 0.9


async def test_external_cancellation_leaves_nothing_running(make_engine, fake_llm):
    fake_llm.default = by_prompt({}, delay=3)
    engine = make_engine()
    result = engine.new_result("protocol", "linear", {})
    with anyio.move_on_after(0.5):
        await engine.run_protocol("linear", {"query": "q"}, result=result)
    assert result.status == "cancelled"
    assert {s.status for s in result.all_steps() if s.step_id in "ab"} == {"cancelled"}
    n = len(fake_llm.requests)
    await anyio.sleep(0.5)
    assert len(fake_llm.requests) == n == 2  # the join step never started


async def test_progress_events(make_engine, fake_llm):
    fake_llm.default = by_prompt({})
    events: list[Event] = []

    async def on_event(ev: Event) -> None:
        events.append(ev)

    await make_engine().run_protocol("linear", {"query": "q"}, on_event=on_event)
    types = [e.type for e in events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert types.count("step_started") == 3 and types.count("step_finished") == 3
    finished = [e for e in events if e.type == "step_finished"]
    assert finished[-1].done == 3 and finished[-1].total == 3


async def test_input_errors_name_the_input(make_engine):
    engine = make_engine()
    with pytest.raises(InputError, match="input 'query' is required"):
        await engine.run_protocol("linear", {})
    with pytest.raises(InputError, match="no input 'bogus'"):
        await engine.run_protocol("linear", {"query": "q", "bogus": 1})
    with pytest.raises(InputError, match="limit is 500"):
        await engine.run_protocol("linear", {"query": "x" * 501})


async def test_validated_inputs_are_not_checked_again(make_engine, fake_llm):
    fake_llm.default = by_prompt({})
    engine = make_engine()
    # the run service coerces once and says so; the engine then takes the inputs as they are
    r = await engine.run_protocol("linear", {"query": "x" * 501}, validated=True)
    assert r.inputs == {"query": "x" * 501} and r.status == "complete"
    with pytest.raises(InputError, match="limit is 500"):
        await engine.run_protocol("linear", {"query": "x" * 501})
    p = await engine.run_profile("chain", {"query": "q", "context": ""}, validated=True)
    assert p.inputs == {"query": "q", "context": ""}
