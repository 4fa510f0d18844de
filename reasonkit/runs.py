"""The run service: the one way `rk think` and the MCP server start, record and report a run.

    settings + registry -> RunService
        .run(request, hooks)                     the whole path of one call, for the CLI and the MCP
                                                 tools (reasonkit/run_request.py): check, budget,
                                                 admission, provider, prepare, record, execute
        .prepare(kind, name, inputs, provider)   checks the target and the inputs (once), builds the
                                                 engine around the metered provider, makes the result
        .execute(run, budget, progress)          runs it; records it in the run store and reports
                                                 progress side by side; counts it in the metrics

The shells keep only what is theirs: argument parsing, rendering and transport (the CLI), tool
schemas, deadlines and background task groups (the server), given to `run` as hooks. Neither builds
an engine, touches the store for a run, or records run metrics itself.

Progress never waits for a database write: each engine event goes to the recorder (`observe`, which
returns at once; a background writer saves coalesced snapshots) and then to the caller's progress
sink. Every `[storage]` setting is honoured here: `save_runs`, `retention_days`, `max_runs`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from loguru import logger

from reasonkit.config import Settings
from reasonkit.errors import InputError, StoreError, UnknownProtocolError
from reasonkit.live_runs import LiveRun, PreparedRun
from reasonkit.observability.metrics import Metrics, Stopwatch, default_metrics
from reasonkit.observability.tracing import end_run_spans, start_run_spans
from reasonkit.protocol.inputs import coerce_inputs
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import PROFILE_INPUTS
from reasonkit.providers.base import Provider
from reasonkit.providers.stack import for_run
from reasonkit.run_notices import local_caps
from reasonkit.run_request import CLI_METHOD, ProgressSink, RunEntry, RunKind, count_request
from reasonkit.store import RunRecorder, StoreBackend, open_store
from reasonkit.store.recorder import FIRST_SAVE_AFTER_S, SAVE_EVERY_S

if TYPE_CHECKING:  # the engine is imported by the first run, not at server start (docs/benchmarks.md 9)
    from reasonkit.engine import Budget, Event, RunResult
    from reasonkit.principal import Principal

__all__ = ["RunService"]


def _cancelled_because(run: PreparedRun) -> None:
    """A cancelled run's stop reason (and the answer's first line, which repeats it) in the
    caller's words, when it has them."""
    result = run.result
    if run.cancel_reason and result.status == "cancelled":
        if result.answer and result.stop_reason:
            result.answer = result.answer.replace(f"({result.stop_reason})", f"({run.cancel_reason})", 1)
        result.stop_reason = run.cancel_reason


def _stopped(run: PreparedRun) -> None:
    """A run stopped by `LiveRun.stop`: cancelled, for the reason the stop gave."""
    result = run.result
    if result.status == "running":  # stopped before the engine's own handler was reached
        result.status, result.complete = "cancelled", False
        result.stop_reason = result.stop_reason or "cancelled by the caller"
        result.finished_at = time.time()
    run.cancel_reason = run.live.stopped
    _cancelled_because(run)


class RunService(RunEntry):
    """Settings + registry (+ store + metrics) -> prepared, executed, recorded and counted runs;
    `run(request, hooks)` (reasonkit/run_request.py) is the whole path for a shell."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        store: StoreBackend | None = None,
        metrics: Metrics | None = None,
    ):
        self.settings = settings
        self.registry = registry
        self.metrics = metrics or default_metrics()
        self._know(registry)
        self.store = store
        self.store_problem: str | None = None  # why runs are not saved, when they should be
        self.live: dict[str, LiveRun] = {}
        self.inflight = 0

    # ------------------------------------------------------------------ store lifecycle
    def open_store(self, *, required: bool = False) -> StoreBackend | None:
        """Open the run store when `[storage] save_runs` is on (I/O: call it at start-up, not per run):
        runs left `running` by a dead process are marked interrupted and the retention settings
        applied. A store that cannot be opened raises `StoreError` when `required` (the server: an
        operator wants to know at start), else it is reported (`store_problem`) and runs go unsaved
        (`rk think`: the answer matters more than its record)."""
        if self.store is not None or not self.settings.storage.save_runs:
            return self.store
        try:
            self.store = open_store(self.settings, metrics=self.metrics)
        except (StoreError, OSError) as exc:
            if required:
                raise StoreError(f"the run store cannot be opened: {exc}") from None
            self.store_problem = f"runs will not be saved: {exc}"
            logger.warning(self.store_problem)
            return None
        try:
            marked = self.store.mark_interrupted()
            if marked:
                logger.warning("{} run(s) from a previous process were marked interrupted", marked)
        except (StoreError, OSError) as exc:
            logger.warning("could not check the run store for interrupted runs: {}", exc)
        self.prune()
        return self.store

    def prune(self) -> int:
        """Apply `[storage] retention_days` and `max_runs`: at start-up, and after every run unless the
        store's maintenance thread does it (a server: every `maintenance_secs`)."""
        storage = self.settings.storage
        if self.store is None or not (storage.retention_days or storage.max_runs):
            return 0
        try:  # 0 turns a limit off
            return self.store.prune(storage.retention_days or None, storage.max_runs or None)
        except (StoreError, OSError) as exc:
            logger.warning("pruning the run store failed: {}", exc)
            return 0

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def reconfigure(self, settings: Settings, registry: Registry) -> None:
        """After a reload: the next runs use these. Runs in flight keep what they started with."""
        self.settings = settings
        self.registry = registry
        self._know(registry)

    def _know(self, registry: Registry) -> None:
        """The names this service's runs may carry as metric labels (client-sent names that are
        none of them are counted as `other`)."""
        self.metrics.know([CLI_METHOD, *registry.protocols, *registry.profiles])

    # ------------------------------------------------------------------ budgets
    def budget(self, requested: Budget | None = None, *, deadline: float | None = None) -> Budget:
        """The budget of a run: what the caller asked for, else `[engine] budget_*`; a `deadline` (the
        server's tool deadline) caps the time budget."""
        from reasonkit.engine import Budget

        engine = self.settings.engine
        given = requested or Budget()
        if given.seconds is None and given.tokens is None and given.usd is None:
            given = Budget(engine.budget_secs, engine.budget_tokens, engine.budget_usd)
        seconds = given.seconds
        if deadline is not None:
            seconds = deadline if seconds is None else min(seconds, deadline)
        return Budget(seconds=seconds, tokens=given.tokens, usd=given.usd)

    # ------------------------------------------------------------------ runs
    def target_inputs(self, kind: RunKind, name: str) -> dict[str, Any]:
        """The input specs of a protocol or profile; `UnknownProtocolError` when it is not loaded."""
        if kind == "profile":
            self.registry.profile(name)
            return PROFILE_INPUTS
        return self.registry.protocol(name).inputs

    def check(self, kind: RunKind, name: str, inputs: dict[str, Any], *, method: str) -> dict[str, Any]:
        """Check the target and coerce the inputs ("3" -> 3, "true" -> True): the one place inputs are
        validated. Raises `InputError` naming the problem."""
        try:
            specs = self.target_inputs(kind, name)
        except UnknownProtocolError as exc:
            raise InputError(str(exc)) from None
        what = f"{kind} '{name}'" if method == CLI_METHOD else f"tool '{method}'"
        return coerce_inputs(specs, inputs, what)

    def prepare(
        self,
        kind: RunKind,
        name: str,
        inputs: dict[str, Any],
        provider: Provider,
        *,
        method: str,
        background: bool = False,
    ) -> PreparedRun:
        """Build the engine and the result for inputs that `check` returned (the engine does not check
        them again). Nothing is recorded until `execute` (or `record_start`)."""
        from reasonkit.engine import Engine

        engine_settings, llm = self.settings.engine, self.settings.llm
        engine = Engine(
            self.registry,
            for_run(provider, self.settings, self.metrics),  # metering, tracing, [privacy] redaction
            max_concurrency=engine_settings.max_concurrency,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
            caps=local_caps(self.settings, provider),
        )
        result = engine.new_result(kind, name, inputs)
        return PreparedRun(engine, LiveRun(result, background), method)

    async def record_start(self, run: PreparedRun) -> None:
        """Save the run as `running` before the call returns (background runs: `run_result` must
        find it at once). Raises `StoreError` when the store cannot take it."""
        if self.store is not None and self.settings.storage.save_runs:
            try:
                await anyio.to_thread.run_sync(self.store.start, run.result)
            except (StoreError, OSError) as exc:
                raise StoreError(f"the run store cannot record the run: {exc}") from None

    async def record_not_run(self, run: PreparedRun, reason: str) -> None:
        """Store a prepared run that will not execute (its user declined it) as `cancelled` with
        `reason`, so `rk runs` and `run_result` show it. Raises `StoreError` like `record_start`."""
        result = run.result
        result.status, result.complete, result.stop_reason = "cancelled", False, reason
        result.finished_at = time.time()
        if self.store is not None and self.settings.storage.save_runs:
            try:
                await anyio.to_thread.run_sync(self.store.save, result)
            except (StoreError, OSError) as exc:
                raise StoreError(f"the run store cannot record the run: {exc}") from None

    async def execute(
        self, run: PreparedRun, budget: Budget, progress: ProgressSink | None = None
    ) -> RunResult:
        """Run to the end (or the budget), record, count. A cancelled run is recorded as cancelled and
        the cancellation propagates; an engine crash is recorded as failed, logged with its traceback
        and returned with an `internal error` entry in `errors` (never raised to the shell)."""
        result = run.result
        self.live[result.run_id] = run.live
        saving = self.store is not None and self.settings.storage.save_runs
        recorder = None
        if saving and self.store is not None:  # saves coalesced per run: store/recorder.py
            recorder = RunRecorder(
                self.store, result, first_save_after=FIRST_SAVE_AFTER_S, save_every=SAVE_EVERY_S
            )
        stopwatch = Stopwatch()
        log = logger.bind(tool=run.method, profile=run.label, run_id=result.run_id)
        spans = start_run_spans(run.method, result)  # the OpenTelemetry spans (no-op when off)

        async def on_event(event: Event) -> None:
            spans.observe(event)  # before any await: entry/step spans become current in their task
            if recorder is not None:
                recorder.observe(event)  # returns at once: the writer saves in the background
            run.live.track(event)
            if progress is not None:
                value = progress(event)
                if inspect.isawaitable(value):
                    await value

        crashed: BaseException | None = None
        self.inflight += 1
        try:
            # `LiveRun.stop` (tasks/cancel, run_result's cancel, from any replica) cancels this scope
            with self.metrics.track_inflight(), anyio.CancelScope() as scope:
                run.live.scope = scope
                if run.live.stopped is not None:
                    scope.cancel()
                await self._run_engine(run, budget, on_event, recorder)
            if scope.cancelled_caught:
                _stopped(run)
            else:
                from reasonkit.engine.calibration import apply_saved_calibrator

                apply_saved_calibrator(result, self.settings.data_dir())  # `rk eval fit` (confidence.md)
        except anyio.get_cancelled_exc_class():
            if result.status == "running":  # cancelled before the engine's own handler was reached
                result.status, result.complete = "cancelled", False
                result.stop_reason = result.stop_reason or "cancelled by the caller"
            _cancelled_because(run)
            with anyio.CancelScope(shield=True):
                await self._finish(run, recorder, stopwatch, log)
            raise
        except Exception as exc:  # noqa: BLE001 - an engine bug must not take the shell down
            crashed = exc
            run.crashed = True
            result.status, result.complete = "failed", False
            result.errors.append(f"internal error: {type(exc).__name__}: {exc}")
            result.finished_at = time.time()
        finally:
            self.inflight -= 1
        with anyio.CancelScope(shield=True):
            await self._finish(run, recorder, stopwatch, log, crashed)
        return result

    async def _run_engine(
        self,
        run: PreparedRun,
        budget: Budget,
        on_event: Callable[[Event], Awaitable[None]],
        recorder: RunRecorder | None,
    ) -> None:
        result = run.result
        runner = run.engine.run_profile if result.kind == "profile" else run.engine.run_protocol
        if recorder is None:
            await runner(
                result.name, result.inputs, budget=budget, on_event=on_event, result=result, validated=True
            )
            return
        async with recorder:
            await runner(
                result.name, result.inputs, budget=budget, on_event=on_event, result=result, validated=True
            )

    async def _finish(
        self,
        run: PreparedRun,
        recorder: RunRecorder | None,
        stopwatch: Stopwatch,
        log: Any,
        crashed: BaseException | None = None,
    ) -> None:
        result = run.result
        try:
            if recorder is not None:
                await anyio.to_thread.run_sync(recorder.finish, result)
        finally:
            run.live.finished = True
            self.live.pop(result.run_id, None)
        status = "error" if crashed is not None else result.status
        count_request(self.metrics, run.method, run.label, status, stopwatch.seconds)
        steps = [
            (step.protocol, step.step_id, step.duration_ms / 1000)
            for step in result.all_steps()
            if step.status in ("ok", "degraded", "failed")
        ]
        self.metrics.observe_run(run.label, result.status, result.confidence, steps)
        bound = log.bind(
            duration_ms=round(stopwatch.seconds * 1000, 1),
            confidence=round(result.confidence, 4),
            tokens=result.tokens.total,
            status=result.status,
            provider=result.provider or None,
            model=result.model or None,
            # the protocols that ran (the deployment guide's `tools_executed`; a profile's closing
            # step is no protocol)
            tools_executed=[
                e.protocol
                for e in result.entries
                if e.status not in ("pending", "skipped") and e.protocol in self.registry.protocols
            ],
        )
        if crashed is not None:
            bound.opt(exception=crashed).error("run crashed")
        elif result.status == "cancelled":
            bound.info("run cancelled")
        else:
            # The CLI shows a failed run in its result; the server's operators need the warning.
            failed = result.status == "failed" and run.method != CLI_METHOD
            (bound.warning if failed else bound.info)("run finished")
        end_run_spans(result)
        if recorder is not None and recorder.store.maintenance is None:  # else its thread does
            await anyio.to_thread.run_sync(self.prune)

    # ------------------------------------------------------------------ reading runs
    # A `viewer` (reasonkit/principal.py) sees only the runs it may: another principal's run reads
    # exactly as an unknown one (None), so no answer tells whether a run id exists. None: no check.
    def live_run(self, run_id: str, viewer: Principal | None = None) -> LiveRun | None:
        live = self.live.get(run_id)
        if live is None or live.finished:
            return None
        return live if viewer is None or viewer.may_see(live.result.owner) else None

    async def stored_trace(self, run_id: str, viewer: Principal | None = None) -> dict[str, Any] | None:
        """A finished (or other-process) run's trace from the store; None when unknown (or not the
        viewer's). Raises `StoreError` when the store cannot be read."""
        if self.store is None:
            return None
        try:
            trace = await anyio.to_thread.run_sync(self.store.get, run_id)
        except Exception as exc:  # noqa: BLE001 - sqlite3 errors too: report, never crash the handler
            raise StoreError(f"the run store cannot be read: {exc}") from None
        if trace is None or viewer is None or viewer.may_see(trace.get("owner")):
            return trace
        return None

    async def trace(self, run_id: str, viewer: Principal | None = None) -> dict[str, Any] | None:
        """The live trace of a run in progress here, else the stored one (the viewer's only)."""
        live = self.live_run(run_id, viewer)
        if live is not None:
            return live.result.trace()
        return await self.stored_trace(run_id, viewer) if run_id else None
