"""Scores of protocol runs (chain entries) and profile runs; their answers are set by
engine/answers.py.

The aggregates are over what finished. Steps or entries that did not finish are named in a
`not_finished` factor that scales the mean down by their share of the weight (an incomplete
analysis must not look confident); they never enter the mean as 0 and never produce a
`contradiction` factor. Entries skipped (by their `when` condition or the budget) are left out.
"""

from __future__ import annotations

from reasonkit.engine import confidence as conf
from reasonkit.engine.answers import CLOSING_ENTRY, FINISHED_STEP, entry_answer, profile_answer
from reasonkit.engine.result import EntryResult, Factor, RunResult, StepTrace
from reasonkit.protocol.models import Profile, Protocol


def _not_finished(
    factors: list[Factor],
    parts: list[tuple[str, float, float]],
    missing: list[tuple[str, float, str]],
    what: str,
) -> None:
    """Append the factor for `missing` ((name, weight, why)); `parts` are those that finished."""
    if not missing:
        return
    total = sum(w for _, w, _ in parts) + sum(w for _, w, _ in missing)
    share = sum(w for _, w, _ in missing) / total if total > 0 else 1.0
    names = ", ".join(f"{name} ({why})" for name, _, why in missing)
    delta = -factors[0].delta * share + 0.0 if parts else 0.0  # + 0.0: never -0.0 ("+-0.000")
    factors.append(
        Factor(
            signal="not_finished",
            delta=delta,
            detail=f"{what} that did not finish ({share:.0%} of the weight): {names}",
        )
    )


def _step_state(trace: StepTrace | None) -> str:
    if trace is None or trace.status in ("pending", "skipped"):
        return "not run"
    return trace.status


def score_entry(proto: Protocol, entry_result: EntryResult) -> None:
    """Confidence, breakdown, threshold and answer of one protocol run, from its step traces."""
    traces = {t.step_id: t for t in entry_result.steps}
    outputs = {t.step_id: t.output for t in entry_result.steps if t.status in FINISHED_STEP}
    parts: list[tuple[str, float, float]] = []
    missing: list[tuple[str, float, str]] = []
    for step in proto.steps:
        trace = traces.get(step.id)
        if trace is not None and trace.status in FINISHED_STEP and trace.confidence is not None:
            parts.append((step.id, step.weight, trace.confidence))
        else:
            missing.append((step.id, step.weight, _step_state(trace)))
    factors = conf.weighted(parts, proto.confidence.contradiction_penalty, "steps")
    _not_finished(factors, parts, missing, "steps")
    factors = conf.apply_signals(proto.confidence.signals, outputs, factors)
    entry_result.confidence, entry_result.confidence_breakdown = conf.finish(factors)
    entry_result.meets_threshold = entry_result.confidence >= proto.min_confidence
    low = [
        t.step_id
        for t in entry_result.steps
        if t.confidence is not None
        and (minimum := proto.step(t.step_id).min_confidence) is not None
        and t.confidence < minimum
    ]
    if low:
        entry_result.meets_threshold = False
        entry_result.confidence_breakdown.append(
            Factor(
                signal="step_minimum", delta=0.0, detail=f"below their own min_confidence: {', '.join(low)}"
            )
        )
    entry_answer(proto, entry_result)


def entry_weight(prof: Profile, entry_id: str) -> float:
    for entry in prof.chain:
        if entry.entry_id == entry_id:
            return entry.weight
    return 1.0


def _entry_finished(entry_result: EntryResult) -> bool:
    return entry_result.confidence is not None and any(s.status in FINISHED_STEP for s in entry_result.steps)


def profile_confidence(prof: Profile, entries: list[EntryResult]) -> tuple[float, list[Factor]]:
    """The weighted aggregate over the entries that finished something; skipped entries are left
    out, entries that ran but finished no step scale it down (not_finished)."""
    # the closing step restates the chain's answer; it checks nothing, so it does not count
    considered = [e for e in entries if e.status not in ("skipped", "pending") and e.entry != CLOSING_ENTRY]
    finished = [e for e in considered if _entry_finished(e)]
    parts = [(e.entry, entry_weight(prof, e.entry), e.confidence or 0.0) for e in finished]
    missing = [
        (e.entry, entry_weight(prof, e.entry), str(e.status)) for e in considered if not _entry_finished(e)
    ]
    factors = conf.weighted(parts, prof.contradiction_penalty, "entries")
    _not_finished(factors, parts, missing, "entries")
    return conf.finish(factors)


def score_profile(prof: Profile, result: RunResult, names: dict[str, str]) -> None:
    """The profile's confidence, threshold and answer (`names`: protocol id -> tool name)."""
    result.confidence, result.confidence_breakdown = profile_confidence(prof, result.entries)
    result.meets_threshold = result.confidence >= prof.min_confidence
    profile_answer(prof, result, names)


def fallback_answer(result: RunResult) -> str:
    for entry_result in reversed(result.entries):
        if entry_result.answer:
            return entry_result.answer
    errors = f" Errors: {'; '.join(result.errors)}" if result.errors else ""
    return "No step finished, so there is no answer." + errors
