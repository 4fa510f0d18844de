"""Run a protocol or a profile as a graph of LLM steps: the `Engine` facade.

- Independent steps, `for_each` items and samples run concurrently, bounded by one limiter per run
  (engine/graph.py, engine/steps.py).
- Profile entries run as soon as the entries their input templates name have finished; an entry
  with `when` waits for every earlier entry and runs only if the confidence so far matches
  (engine/chain.py).
- Budgets (time, tokens, USD) stop the scheduling of new steps; the time budget also cancels the
  steps in flight. What finished is returned, marked incomplete (engine/budget.py).
- Cancellation from outside propagates (anyio); the RunResult passed in as `result` keeps what
  finished so the caller can store it as cancelled.
- Small-model caps (engine/caps.py) shrink item counts, max_tokens and samples; the result's notes
  say what they changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from reasonkit.engine.budget import (
    Budget,
    Event,
    EventCallback,
    RunState,
    TextCallback,
    unenforced_budget,
)
from reasonkit.engine.caps import StepCaps, cap_lines
from reasonkit.engine.chain import run_chain
from reasonkit.engine.closing import close_run
from reasonkit.engine.graph import run_entry
from reasonkit.engine.result import EntryResult, RunResult
from reasonkit.engine.scoring import fallback_answer, score_entry, score_profile
from reasonkit.engine.steps import StepRunner
from reasonkit.protocol.inputs import coerce_inputs
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import PROFILE_INPUTS, ChainEntry, Protocol
from reasonkit.providers.base import Provider

__all__ = ["Engine"]


class Engine:
    """Runs protocols and profiles from a Registry against one Provider."""

    def __init__(
        self,
        registry: Registry,
        provider: Provider,
        *,
        max_concurrency: int = 16,
        temperature: float | None = 0.3,
        max_tokens: int = 2048,
        caps: StepCaps | None = None,
    ):
        self.registry = registry
        self.provider = provider
        self.max_concurrency = max_concurrency
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.caps = caps
        # Replies as they are generated (`text` events), for a shell that shows them (`rk think` on
        # a terminal); set before the run starts.
        self.on_text: TextCallback | None = None
        self._state: RunState | None = None  # the run in progress (see `expire`)

    def expire(self, reason: str) -> None:
        """End the run in progress as its deadline would (what finished is returned, `incomplete`),
        e.g. when a server's shutdown grace period ends."""
        state = self._state
        if state is not None and not state.exhausted:
            state.exhausted = reason
            if state.scope is not None:
                state.scope.cancel()

    # ----------------------------------------------------------------- public API
    def new_result(
        self, kind: str, name: str, inputs: dict[str, Any], run_id: str | None = None
    ) -> RunResult:
        return RunResult(
            run_id=run_id or uuid.uuid4().hex[:16],
            kind=kind,  # type: ignore[arg-type]
            name=name,
            inputs=inputs,
            started_at=time.time(),
            provider=self.provider.name,
            model=self.provider.model,
        )

    async def run_protocol(
        self,
        protocol_id: str,
        inputs: dict[str, Any],
        *,
        budget: Budget | None = None,
        on_event: EventCallback | None = None,
        result: RunResult | None = None,
        validated: bool = False,
    ) -> RunResult:
        """Run one protocol. `validated=True`: the caller already ran `coerce_inputs` on `inputs`."""
        proto = self.registry.protocol(protocol_id)
        clean = inputs if validated else coerce_inputs(proto.inputs, inputs, f"protocol '{proto.id}'")
        res = result or self.new_result("protocol", proto.id, clean)
        res.inputs = clean
        res.min_confidence = proto.min_confidence
        entry = EntryResult(
            entry=proto.id, protocol=proto.id, inputs=clean, min_confidence=proto.min_confidence
        )
        res.entries.append(entry)

        async def body(state: RunState) -> None:
            state.total = len(proto.steps)
            await self._run_entry(state, proto, entry, None)
            res.answer, res.answer_entry, res.answer_tool = entry.answer, entry.entry, proto.name
            res.confidence = entry.confidence or 0.0
            res.confidence_breakdown = list(entry.confidence_breakdown)
            res.meets_threshold = entry.meets_threshold

        return await self._execute(res, budget or Budget(), on_event, body)

    async def run_profile(
        self,
        profile_id: str,
        inputs: dict[str, Any],
        *,
        budget: Budget | None = None,
        on_event: EventCallback | None = None,
        result: RunResult | None = None,
        validated: bool = False,
    ) -> RunResult:
        """Run a profile chain. `validated=True`: the caller already ran `coerce_inputs` on `inputs`."""
        prof = self.registry.profile(profile_id)
        clean = inputs if validated else coerce_inputs(PROFILE_INPUTS, inputs, f"profile '{prof.id}'")
        res = result or self.new_result("profile", prof.id, clean)
        res.inputs = clean
        res.min_confidence = prof.min_confidence

        async def body(state: RunState) -> None:
            await run_chain(state, self.registry, prof, clean, self._run_entry)
            names = {e.protocol: self.registry.protocol(e.protocol).name for e in prof.chain}
            await close_run(state, prof, names, self._steps())

        return await self._execute(res, budget or Budget(), on_event, body)

    # ----------------------------------------------------------------- run frame
    def _steps(self) -> StepRunner:
        return StepRunner(
            self.provider, temperature=self.temperature, max_tokens=self.max_tokens, caps=self.caps
        )

    async def _run_entry(
        self, state: RunState, proto: Protocol, entry_result: EntryResult, entry: ChainEntry | None
    ) -> None:
        await run_entry(state, self._steps(), proto, entry_result, entry)

    async def _execute(
        self,
        res: RunResult,
        budget: Budget,
        on_event: EventCallback | None,
        body: Callable[[RunState], Awaitable[None]],
    ) -> RunResult:
        res.budget = budget.as_dict()
        res.budget_note = unenforced_budget(budget.usd, self.provider.unpriced_models())
        t0 = time.monotonic()
        deadline = t0 + budget.seconds if budget.seconds else None
        state = RunState(res, budget, anyio.CapacityLimiter(self.max_concurrency), on_event, deadline)
        state.on_text = self.on_text
        self._state = state
        await state.emit(Event("run_started", res.run_id, message=f"{res.kind} {res.name}"))
        scope_deadline = anyio.current_time() + budget.seconds if budget.seconds else float("inf")
        try:
            with anyio.CancelScope(deadline=scope_deadline) as scope:
                state.scope = scope
                await body(state)
            if scope.cancelled_caught and state.halted is None:
                state.exhausted = state.exhausted or f"time budget of {budget.seconds:g}s reached"
            if scope.cancelled_caught or state.halted is not None:
                self._finalize_partial(res, "halted" if state.halted is not None else "incomplete")
        except anyio.get_cancelled_exc_class():
            res.status = "cancelled"
            res.stop_reason = "cancelled by the caller"
            res.complete = False
            # What finished is kept and scored, so a cancelled run reports (and stores) its
            # partial confidence and answer like a run cut by its deadline.
            self._finalize_partial(res, "cancelled")
            res.answer = f"**Cancelled** ({res.stop_reason}).\n\n{res.answer or fallback_answer(res)}"
            res.notes += cap_lines(state.cap_notes)
            res.duration_ms = (time.monotonic() - t0) * 1000
            res.finished_at = time.time()
            raise
        res.notes += cap_lines(state.cap_notes)
        res.duration_ms = (time.monotonic() - t0) * 1000
        res.finished_at = time.time()
        incomplete = [e for e in res.entries if e.status in ("incomplete", "failed", "cancelled")]
        res.complete = not incomplete and state.exhausted is None
        all_failed = all(e.status in ("failed", "skipped") for e in res.entries)
        if res.complete:
            res.status = "complete"
        elif state.halted is not None or (
            res.entries and all_failed and not any(e.status == "complete" for e in res.entries)
        ):
            res.status = "failed"
        else:
            res.status = "incomplete"
        if state.halted or state.exhausted:
            res.stop_reason = state.halted or state.exhausted
        if not res.answer:
            res.answer = fallback_answer(res)
        if not res.complete and not res.answer.startswith("**"):
            reason = res.stop_reason or "some steps did not finish"
            heading = "Failed" if res.status == "failed" else "Incomplete result"
            res.answer = f"**{heading}** ({reason}).\n\n{res.answer}"
        await state.emit(
            Event(
                "run_finished",
                res.run_id,
                status=res.status,
                confidence=res.confidence,
                done=state.done,
                total=state.total,
            )
        )
        return res

    @staticmethod
    def _close_open(res: RunResult, status: str) -> None:
        for entry_result in res.entries:
            if status == "halted" and entry_result.status == "pending":
                entry_result.status = "skipped"
                entry_result.skip_reason = "not started: the provider failed"
            elif entry_result.status in ("pending", "running"):
                entry_result.status = "cancelled" if status == "cancelled" else "incomplete"
            for trace in [*entry_result.steps, *(item for st in entry_result.steps for item in st.items)]:
                failed_call = next((c.error for c in reversed(trace.calls) if c.error), None)
                if trace.status == "running" and status == "halted" and failed_call:
                    trace.status, trace.error = "failed", failed_call  # the call that halted the run
                elif trace.status == "running":
                    trace.status = "cancelled"
                elif trace.status == "pending":
                    trace.status = "skipped"
                    why = "the provider failed" if status == "halted" else status
                    trace.error = f"not started: {why}"

    def _finalize_partial(self, res: RunResult, why: str) -> None:
        """Close what is still open (`why`: incomplete, halted or cancelled) and score what finished:
        entries that were cut off get their confidence from their finished steps."""
        self._close_open(res, why)
        for entry_result in res.entries:
            if entry_result.confidence is None and entry_result.status in ("incomplete", "cancelled"):
                proto = self.registry.protocols.get(entry_result.protocol)
                if proto:
                    score_entry(proto, entry_result)
                entry_result.status = "cancelled" if why == "cancelled" else "incomplete"
        if res.kind == "profile":
            prof = self.registry.profiles.get(res.name)
            if prof:
                names = {p.id: p.name for p in self.registry.protocols.values()}
                score_profile(prof, res, names)
        elif res.entries:
            first = res.entries[0]
            res.answer, res.confidence = first.answer, first.confidence or 0.0
            proto = self.registry.protocols.get(first.protocol)
            res.answer_entry, res.answer_tool = first.entry, proto.name if proto else first.protocol
            res.confidence_breakdown, res.meets_threshold = (
                list(first.confidence_breakdown),
                first.meets_threshold,
            )
