"""One protocol run (alone, or as one entry of a profile chain): its steps as a graph. A step starts
as soon as the steps it depends on have finished; a step whose dependency produced no output is
skipped, and so is every step once the budget is spent."""

from __future__ import annotations

import time
from typing import Any

import anyio

from reasonkit.engine.budget import Event, RunState
from reasonkit.engine.result import EntryResult, StepTrace
from reasonkit.engine.scoring import FINISHED_STEP, score_entry
from reasonkit.engine.steps import StepRunner
from reasonkit.protocol.dependencies import effective_deps
from reasonkit.protocol.models import ChainEntry, Protocol, Step


async def run_entry(
    state: RunState,
    steps: StepRunner,
    proto: Protocol,
    entry_result: EntryResult,
    entry: ChainEntry | None,
) -> None:
    t0 = time.monotonic()
    entry_result.status = "running"
    await state.emit(
        Event("entry_started", state.result.run_id, entry=entry_result.entry, message=proto.name)
    )
    deps = effective_deps(proto)
    traces = {
        s.id: StepTrace(step_id=s.id, protocol=proto.id, entry=entry_result.entry, kind=s.kind)
        for s in proto.steps
    }
    entry_result.steps = [traces[s.id] for s in proto.steps]
    done_events = {s.id: anyio.Event() for s in proto.steps}
    outputs: dict[str, Any] = {}

    async def run_step(step: Step) -> None:
        trace = traces[step.id]
        try:
            for dep in deps[step.id]:
                await done_events[dep].wait()
            bad = [dep for dep in deps[step.id] if traces[dep].status not in FINISHED_STEP]
            if bad:
                trace.status = "skipped"
                trace.error = f"skipped: step '{bad[0]}' did not produce output"
                return
            if state.check_budget():
                trace.status = "skipped"
                trace.error = f"skipped: {state.exhausted}"
                return
            await steps.run_step(state, proto, step, trace, entry_result, entry, outputs)
            if trace.status in FINISHED_STEP:
                outputs[step.id] = trace.output
        finally:
            done_events[step.id].set()
            entry_result.tokens.add(trace.tokens)
            entry_result.cost_usd += trace.cost_usd

    async with anyio.create_task_group() as tg:
        for s in proto.steps:
            tg.start_soon(run_step, s)

    entry_result.duration_ms = (time.monotonic() - t0) * 1000
    score_entry(proto, entry_result)
    if all(t.status in FINISHED_STEP for t in entry_result.steps):
        entry_result.status = "complete"
    elif any(t.status in FINISHED_STEP for t in entry_result.steps):
        entry_result.status = "incomplete"
    else:
        entry_result.status = "failed"
    await state.emit(
        Event(
            "entry_finished",
            state.result.run_id,
            entry=entry_result.entry,
            status=entry_result.status,
            confidence=entry_result.confidence,
        )
    )
