"""Saving a run while it runs, without ever making progress wait for the disk.

    recorder = RunRecorder(store, result)
    async with recorder:                 # starts the background writer; exit waits for its last write
        ...                              # the engine runs; for each engine event:
        recorder.observe(event)          # returns at once, never touches the disk
    recorder.finish(result)              # the final save (synchronous: call it in a worker thread)

`observe()` only marks a save as due (on `run_started` and on the events in `SAVE_EVENTS`) and wakes
the writer. The writer serialises the trace in the event-loop thread (a consistent snapshot: the
engine mutates the result only there) and writes it in a worker thread. Saves are ordered and
coalesced: when several steps finish while a write is in flight, the next write carries all of them.

Coalesced per run (`first_save_after`, `save_every`, as the run service sets them): the first write
waits until the run has gone on that long, later ones come at most that often, and on leaving the
block a save still waiting is dropped, because `finish()` writes the final state anyway. A run that
ends sooner (a cached call: milliseconds) is written once, by `finish()`; a long one about once a
`save_every`, however many steps finish, instead of once per event: each write JSON-encodes the
whole trace, so per-event writes cost a run O(steps x trace) (issue 26). The price is that a process
killed within `first_save_after` of a run's start leaves no row for it (the run service records a
background run's start itself, at once: `record_start`). With both at 0 (the default) every due
save is written as soon as the writer is free, and leaving the block writes what is due.
A store failure is counted and logged (rate-limited by the SQLite store) and never breaks the run; a
failed final save is kept and retried by the store (`StoreBackend.save_final`). `finish()` writes the final
state last, whether or not the writer ever ran (the CLI may use a recorder without entering it).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from reasonkit.errors import StoreError

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult
    from reasonkit.store.base import StoreBackend

log = logging.getLogger("reasonkit.store")

#: How the run service coalesces a run's saves (see the module docstring): the first write once the
#: run has gone on this long, later ones at most this often.
FIRST_SAVE_AFTER_S = 0.25
SAVE_EVERY_S = 1.0
#: Engine events after which the run is saved (besides `run_started`, which records its start).
SAVE_EVENTS = frozenset({"step_finished", "entry_finished", "entry_skipped", "run_finished"})


class RunRecorder:
    """Records one run in a `StoreBackend` as it progresses (see the module docstring).

    `observe()` and the context manager belong to the event loop that runs the engine; `finish()`
    may be called from any thread, also after the context manager has exited or without it."""

    def __init__(
        self,
        store: StoreBackend,
        result: RunResult,
        *,
        first_save_after: float = 0.0,
        save_every: float = 0.0,
    ):
        self.store = store
        self.result = result
        self.first_save_after, self.save_every = first_save_after, save_every
        self._next_write = 0.0  # anyio.current_time() before which the writer holds a due save
        self._closed: anyio.Event | None = None  # set on leaving the block: a held save is dropped
        self.saves = 0  # writes actually made (for tests and metrics)
        self.errors = 0  # writes that failed (each one logged)
        self.run_started = False  # the engine announced the run (its inputs were valid)
        self._due = 0  # saves requested by observe(), counted
        self._done = 0  # the newest request a write (or a failed attempt) has covered
        self._start_due = False  # the next write records the start (owner, status running)
        self._finished = False  # finish() was called: the writer writes nothing more
        self._final_written = False
        self._closing = False  # __aexit__: the writer returns once nothing is due
        self._wake: anyio.Event | None = None  # set by observe() to wake the writer
        self._task_group: TaskGroup | None = None
        self._writer_scope: anyio.CancelScope | None = None  # cancels the writer alone
        self._write_lock = threading.Lock()  # orders the writer's writes against finish()
        self._count_lock = threading.Lock()  # the counters change in two threads

    # ----------------------------------------------------------------- the writer
    async def __aenter__(self) -> RunRecorder:
        if self._task_group is not None:
            raise StoreError("this RunRecorder is already in use (async with it once at a time)")
        self._wake = anyio.Event()
        self._closed = anyio.Event()
        self._next_write = anyio.current_time() + self.first_save_after
        self._closing = False
        self._writer_scope = scope = anyio.CancelScope()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        task_group.start_soon(self._write_loop, scope, name=f"run recorder {self.result.run_id}")
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Wait until every due save is written. When the body raised or was cancelled, the writer is
        cancelled instead (the final save is finish()'s) and the body's exception propagates as it is
        (never wrapped in an exception group)."""
        task_group, self._task_group = self._task_group, None
        assert task_group is not None, "__aexit__ without __aenter__"
        self._closing = True
        if exc is not None and self._writer_scope is not None:
            self._writer_scope.cancel()
        elif self._wake is not None:
            self._wake.set()
        if self._closed is not None:
            self._closed.set()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            self._wake = None

    def observe(self, event: Any) -> None:
        """Note an engine event: marks a save as due (for `run_started` and `SAVE_EVENTS`) and wakes
        the writer. Returns at once and never touches the disk. Call it in the event-loop thread."""
        event_type = getattr(event, "type", None)
        if event_type == "run_started":
            self.run_started = True
            self._start_due = True
        elif event_type not in SAVE_EVENTS:
            return
        if self._finished:
            return
        self._due += 1
        if self._wake is not None:
            self._wake.set()

    async def _write_loop(self, scope: anyio.CancelScope) -> None:
        with scope:
            while not self._finished:
                if self._done < self._due:
                    if not await self._held():
                        return  # leaving: the final save (finish) carries what was held
                    await self._write_due()
                    self._next_write = anyio.current_time() + self.save_every
                    continue
                if self._closing or self._wake is None:
                    return
                await self._wake.wait()
                self._wake = anyio.Event()

    async def _held(self) -> bool:
        """Wait until the next write is allowed (`first_save_after`, `save_every`); False when the
        block is left meanwhile while coalescing (the held save is dropped)."""
        wait = self._next_write - anyio.current_time()
        if wait <= 0 or self._closed is None:
            return not (self._closing and self.save_every + self.first_save_after > 0)
        with anyio.move_on_after(wait):
            await self._closed.wait()
        return not self._closing

    async def _write_due(self) -> None:
        request, start = self._due, self._start_due
        self._start_due = False
        try:
            trace = self.result.trace()  # here, in the event-loop thread: a consistent snapshot
            written = await anyio.to_thread.run_sync(self._write_snapshot, start, trace)
        except Exception as exc:  # noqa: BLE001 - recording must never break the run
            self._count(errors=1)
            self._report("could not save to the run store", exc)
            written = False
        self._done = request
        if written:
            self._count(saves=1)

    def _write_snapshot(self, start: bool, trace: dict[str, Any]) -> bool:
        with self._write_lock:
            if self._finished or self._final_written:  # the final state is finish()'s to write
                return False
            if start:
                self.store.start_trace(trace)
            else:
                self.store.save_trace(trace)
            return True

    # ----------------------------------------------------------------- the end
    def finish(self, result: RunResult | None = None) -> None:
        """The final save (synchronous; waits for a write in flight, so the final state is written
        last). Also after cancellation (status is then "cancelled"). A result still marked "running"
        here means the engine raised: it is stored as "failed". A run the engine never started (it
        rejected the inputs: no run_started event, status still "running") is not stored, unless the
        caller had already recorded it with store.start()."""
        res = result if result is not None else self.result
        self._finished = True
        if not self.run_started and res.status == "running":
            try:
                if self.store.summary(res.run_id) is None:
                    return  # the engine rejected the inputs before starting: nothing to record
            except Exception:  # noqa: BLE001 - fall through to the save, which reports the problem
                pass
        trace = res.trace()
        if trace.get("status") == "running":
            trace["status"] = "failed"
            trace["complete"] = False
            trace["stop_reason"] = (
                trace.get("stop_reason") or "the run ended without a final status (internal error)"
            )
            if trace.get("finished_at") is None:
                trace["finished_at"] = time.time()
        try:
            with self._write_lock:
                self._final_written = True  # also when it fails: the store retries it, not the writer
                self.store.save_final(trace)  # the SQLite store keeps a failed one and retries it
            self._count(saves=1)
        except Exception as exc:  # noqa: BLE001 - recording must never break the run
            self._count(errors=1)
            self._report("final save to the run store failed", exc)

    def _report(self, what: str, exc: BaseException) -> None:
        """A failed write: a store that keeps its health (SQLite) has counted it and logs a warning
        at most once a minute; for another store it is logged here."""
        where = f"run {self.result.run_id}: {what} {self.store.path}: {exc}"
        if self.store.health is not None:
            log.debug(where)
        else:
            log.warning(where)

    def _count(self, saves: int = 0, errors: int = 0) -> None:
        with self._count_lock:
            self.saves += saves
            self.errors += errors
