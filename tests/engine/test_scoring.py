"""Entry and profile scoring (reasonkit/engine/scoring.py): aggregates over what finished; steps and
entries that did not finish never count as 0 in the mean nor as a contradiction."""

from __future__ import annotations

import pytest

from reasonkit.engine.result import EntryResult, StepTrace
from reasonkit.engine.scoring import profile_confidence, score_entry
from reasonkit.protocol.models import ChainEntry, Profile, Protocol, ResultSpec, Step

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}}}


def protocol(*weights: float) -> Protocol:
    steps = [
        Step(id=f"s{i}", kind="analyze", prompt="p", output=SCHEMA, weight=w) for i, w in enumerate(weights)
    ]
    return Protocol(id="p", name="P", description="d", inputs={}, steps=steps, result=ResultSpec(step="s0"))


def trace(step_id: str, status: str, confidence: float | None = None) -> StepTrace:
    return StepTrace(
        step_id=step_id,
        protocol="p",
        entry="p",
        kind="analyze",
        status=status,  # type: ignore[arg-type]
        confidence=confidence,
        output={"answer": f"from {step_id}"} if status == "ok" else None,
    )


def signals(factors) -> list[str]:
    return [f.signal for f in factors]


def test_steps_not_run_are_not_zeros_and_not_a_contradiction():
    entry = EntryResult(entry="p", protocol="p")
    entry.steps = [
        trace("s0", "ok", 0.8),
        trace("s1", "ok", 0.8),
        trace("s2", "skipped"),
        trace("s3", "failed"),
    ]
    score_entry(protocol(1, 1, 1, 1), entry)
    assert signals(entry.confidence_breakdown) == ["weighted_mean", "not_finished"]
    mean, not_finished = entry.confidence_breakdown
    assert mean.delta == pytest.approx(0.8)  # over what finished
    assert not_finished.delta == pytest.approx(-0.4)  # half of the weight did not finish
    assert "s2 (not run)" in not_finished.detail and "s3 (failed)" in not_finished.detail
    assert "did not finish" in not_finished.detail
    assert entry.confidence == pytest.approx(0.4)


def test_nothing_finished_scores_zero_without_contradiction():
    entry = EntryResult(entry="p", protocol="p")
    entry.steps = [trace("s0", "failed"), trace("s1", "skipped")]
    score_entry(protocol(1, 1), entry)
    assert entry.confidence == 0.0
    assert "contradiction" not in signals(entry.confidence_breakdown)


def entry_result(entry_id: str, status: str, confidence: float | None, finished_steps: int) -> EntryResult:
    result = EntryResult(entry=entry_id, protocol=entry_id, status=status, confidence=confidence)  # type: ignore[arg-type]
    result.steps = [trace(f"s{i}", "ok", confidence) for i in range(finished_steps)] + [trace("x", "skipped")]
    return result


def test_profile_aggregate_is_over_entries_that_ran():
    prof = Profile(
        id="pr",
        description="d",
        min_confidence=0.5,
        chain=[
            ChainEntry(protocol="a"),
            ChainEntry(protocol="b"),
            ChainEntry(protocol="c"),
            ChainEntry(protocol="d"),
        ],
    )
    entries = [
        entry_result("a", "complete", 0.8, 2),
        entry_result("b", "complete", 0.8, 2),
        entry_result("c", "skipped", None, 0),  # its `when` did not hold: left out
        entry_result("d", "failed", 0.0, 0),  # ran, finished nothing: not a 0 in the mean
    ]
    value, factors = profile_confidence(prof, entries)
    assert signals(factors) == ["weighted_mean", "not_finished"]
    assert factors[0].delta == pytest.approx(0.8)
    assert "d (failed)" in factors[1].detail and "c" not in factors[1].detail
    assert value == pytest.approx(0.8 * 2 / 3)


async def test_failed_step_does_not_create_a_contradiction_in_a_run(scripted):
    engine, _ = scripted({"A:": ["I refuse.", "Still no."], "B:": {"note": "n", "confidence": 0.8}})
    r = await engine.run_protocol("linear", {"query": "q"})
    assert signals(r.confidence_breakdown) == ["weighted_mean", "not_finished"]
    assert r.confidence_breakdown[0].delta == pytest.approx(0.8)
    assert r.confidence == pytest.approx(0.8 * 1 / 4)  # b finished: weight 1 of 4 (join weighs 2)
