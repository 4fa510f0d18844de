"""Builders for realistic RunResults: the store benchmark (bench/store_bench.py) and the store tests
(tests/store/_helpers.py re-exports them, also for the subprocesses the tests start)."""

from __future__ import annotations

import time
import uuid

from reasonkit.engine.result import CallTrace, EntryResult, Factor, RunResult, StepTrace, Tokens

_WORDS = "premise conclusion axiom evidence source dimension perspective claim fallacy verdict ".split()


def _text(n: int, seed: int) -> str:
    words = [_WORDS[(seed + i) % len(_WORDS)] for i in range(n // 8 + 1)]
    return " ".join(words)[:n]


def make_step(
    protocol: str, entry: str, step_id: str, i: int, item_index: int | None = None, status: str = "ok"
) -> StepTrace:
    raw = '{"findings": "' + _text(1800, i) + '", "confidence": 0.8}'
    return StepTrace(
        step_id=step_id,
        protocol=protocol,
        entry=entry,
        kind="analyze",
        item_index=item_index,
        status=status,  # type: ignore[arg-type]
        system="You are one step of ReasonKit." + _text(300, i),
        prompt="<query>" + _text(3000, i) + "</query>",
        raw_response=raw,
        output={"findings": _text(1200, i), "items": [_text(60, i + k) for k in range(5)], "confidence": 0.8},
        confidence=0.8 if status in ("ok", "degraded") else None,
        confidence_breakdown=[
            Factor(signal="model", delta=0.85, detail="model said 0.85"),
            Factor(signal="repair", delta=-0.05, detail="one repair call"),
        ],
        tokens=Tokens(input=900, output=450),
        cost_usd=0.0021,
        duration_ms=1234.5,
        provider="anthropic",
        model="claude-test",
        error=None if status != "failed" else "provider error: 503",
        notes=["repair call made: missing field"],
        calls=[
            CallTrace(
                purpose="main",
                raw_response=raw,
                stop_reason="end_turn",
                tokens=Tokens(input=900, output=450),
                cost_usd=0.0021,
                duration_ms=1200.0,
                provider="anthropic",
                model="claude-test",
                attempts=1,
            )
        ],
        started_at=time.time() - 2,
        finished_at=time.time(),
    )


def make_result(
    run_id: str | None = None,
    *,
    kind: str = "profile",
    name: str = "paranoid",
    status: str = "complete",
    started_at: float | None = None,
    n_steps: int = 50,
    entries: int = 5,
) -> RunResult:
    """A run whose entries hold `n_steps` step instances in total (for_each items included)."""
    res = RunResult(
        run_id=run_id or uuid.uuid4().hex[:16],
        kind=kind,  # type: ignore[arg-type]
        name=name,
        status=status,  # type: ignore[arg-type]
        complete=status == "complete",
        inputs={"query": "Is it true that {{ inputs.query }} stays verbatim? ünïcødé ✓"},
        started_at=started_at if started_at is not None else time.time(),
        provider="anthropic",
        model="claude-test",
        min_confidence=0.8,
    )
    per_entry = max(1, n_steps // max(entries, 1))
    made = 0
    for e in range(entries):
        proto = ["gigathink", "laserlogic", "bedrock", "proofguard", "brutalhonesty"][e % 5]
        entry_result = EntryResult(
            entry=f"{proto}{e // 5 or ''}",
            protocol=proto,
            status="complete",
            confidence=0.8,
            min_confidence=0.7,
            meets_threshold=True,
            answer=_text(400, e),
        )
        budget = per_entry if e < entries - 1 else n_steps - made
        # the first step of each entry is a for_each step with items
        n_items = max(0, min(budget - 3, 8))
        if n_items:
            parent = make_step(proto, entry_result.entry, "explore", e)
            parent.items = [
                make_step(proto, entry_result.entry, "explore", e * 100 + k, item_index=k + 1)
                for k in range(n_items)
            ]
            entry_result.steps.append(parent)
            made += 1 + n_items
            budget -= 1 + n_items
        for s in range(budget):
            entry_result.steps.append(make_step(proto, entry_result.entry, f"step{s}", e * 10 + s))
            made += 1
        entry_result.confidence_breakdown = [Factor(signal="weighted_mean", delta=0.8, detail="steps")]
        res.entries.append(entry_result)
        for step in entry_result.steps:
            entry_result.tokens.add(step.tokens)
            res.tokens.add(step.tokens)
            res.cost_usd += step.cost_usd
    if status != "running":
        res.finished_at = res.started_at + 12.5
        res.duration_ms = 12500.0
        res.confidence = 0.83
        res.meets_threshold = True
        res.answer = "The claim holds, with caveats. " + _text(500, 7)
        res.confidence_breakdown = [
            Factor(signal="weighted_mean", delta=0.86, detail="entries"),
            Factor(signal="contradiction", delta=-0.03, detail="one entry disagreed"),
        ]
    return res
