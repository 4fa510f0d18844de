"""RunRecorder: observe() never waits for the disk; ordered, coalesced writes; the final state last;
store faults never break the run; with the real engine."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from reasonkit.engine import Engine, Event
from reasonkit.engine.result import EntryResult, RunResult, StepTrace
from reasonkit.errors import StoreError
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.anthropic import AnthropicProvider
from reasonkit.providers.base import PriceTable
from reasonkit.store import SAVE_EVENTS, RunRecorder, SqliteRunStore

from ._helpers import must

try:
    from tests.fakes.fake_llm import FakeLLM, Reply, schema_filler
except ImportError:  # pragma: no cover - plain `pytest` puts tests/ itself on sys.path
    from fakes.fake_llm import FakeLLM, Reply, schema_filler  # type: ignore[no-redef]


class LoggingStore(SqliteRunStore):
    """A real SqliteRunStore that logs each write (which method, the status and notes it carried) and can
    hold writes at a gate: a write waits (in its worker thread) until the gate opens."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.writes: list[tuple[str, str, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a write reached the gate

    def _held(self, method: str, trace: dict[str, Any]) -> None:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        self.writes.append((method, trace["status"], len(trace["notes"])))

    def start_trace(self, trace: dict[str, Any]) -> None:
        self._held("start", trace)
        super().start_trace(trace)

    def save_trace(self, trace: dict[str, Any]) -> None:
        self._held("save", trace)
        super().save_trace(trace)


@pytest.fixture
def store(tmp_path: Path):
    s = LoggingStore(tmp_path / "runs.db")
    yield s
    s.gate.set()
    s.close()


def _result(run_id: str = "rec0000000000001") -> RunResult:
    return RunResult(
        run_id=run_id,
        kind="protocol",
        name="gigathink",
        inputs={"query": "q"},
        started_at=1.0e9,
        provider="anthropic",
        model="m",
    )


async def _until(condition: Callable[[], bool]) -> None:
    """Poll (the writer works in a thread the test cannot await directly) for up to 5 s."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the counters
            await anyio.sleep(0.005)


async def _entered(store: LoggingStore) -> None:
    with anyio.fail_after(5):
        await anyio.to_thread.run_sync(store.entered.wait)


@pytest.mark.anyio
async def test_saves_follow_the_events(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        await _until(lambda: rec.saves == 1)
        assert store.writes == [("start", "running", 0)]
        assert must(store.summary(res.run_id))["status"] == "running" and rec.run_started

        res.entries.append(EntryResult(entry="gigathink", protocol="gigathink", status="running"))
        rec.observe(Event("entry_started", res.run_id, entry="gigathink"))
        step = StepTrace(step_id="dims", protocol="gigathink", entry="gigathink", kind="generate")
        res.entries[0].steps.append(step)
        rec.observe(Event("step_started", res.run_id, entry="gigathink", step="dims"))
        await anyio.sleep(0.05)
        assert rec.saves == 1  # started events are not saved
        assert must(store.get(res.run_id))["entries"] == []

        step.status, step.confidence = "ok", 0.9
        rec.observe(Event("step_finished", res.run_id, entry="gigathink", step="dims", status="ok"))
        await _until(lambda: rec.saves == 2)
        assert must(store.get(res.run_id))["entries"][0]["steps"][0]["status"] == "ok"

        res.entries[0].status = "complete"
        rec.observe(Event("entry_finished", res.run_id, entry="gigathink", status="complete"))
        rec.observe(Event("entry_skipped", res.run_id, entry="other", message="confident enough"))
        res.status, res.complete, res.confidence = "complete", True, 0.9
        rec.observe(Event("run_finished", res.run_id, status="complete", confidence=0.9))
    # leaving the block waited for the writer: the last state it saw is stored
    assert store.writes[-1][:2] == ("save", "complete")
    assert 3 <= rec.saves <= 5  # the last three events may share one write
    assert must(store.summary(res.run_id))["status"] == "complete"
    rec.finish(res)
    assert store.writes[-1][:2] == ("save", "complete") and rec.errors == 0
    saves = rec.saves
    # after finish() events are ignored: the final state is never overwritten
    res.status = "running"
    rec.observe(Event("step_finished", res.run_id))
    assert must(store.summary(res.run_id))["status"] == "complete" and rec.saves == saves
    assert {"step_finished", "entry_finished", "entry_skipped", "run_finished"} == SAVE_EVENTS


@pytest.mark.anyio
async def test_coalesced_saves_leave_a_quick_run_to_finish(store: LoggingStore) -> None:
    """With `first_save_after`, a run that is over sooner is not written by the writer at all:
    leaving the block drops the held save and `finish()` writes the final state, once."""
    res = _result()
    rec = RunRecorder(store, res, first_save_after=5.0, save_every=5.0)
    with anyio.fail_after(2):  # leaving never waits out the delay
        async with rec:
            rec.observe(Event("run_started", res.run_id))
            for i in range(10):
                res.notes.append(f"step {i}")
                rec.observe(Event("step_finished", res.run_id))
            res.status, res.complete = "complete", True
            rec.observe(Event("run_finished", res.run_id, status="complete"))
    assert store.writes == [] and rec.saves == 0
    rec.finish(res)
    assert store.writes == [("save", "complete", 10)] and rec.saves == 1
    assert must(store.get(res.run_id)) == res.trace()


@pytest.mark.anyio
async def test_coalesced_saves_come_at_most_every_interval(store: LoggingStore) -> None:
    """A long run is written once it has gone on `first_save_after`, then at most once per
    `save_every`, however many steps finish: here 40 steps over ~0.4 s make 2-3 writes, not 41."""
    res = _result()
    rec = RunRecorder(store, res, first_save_after=0.1, save_every=0.25)
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        await anyio.sleep(0.03)
        assert store.writes == []  # held: the run is younger than first_save_after
        await _until(lambda: rec.saves == 1)
        assert store.writes[0][0] == "start"
        for i in range(40):
            res.notes.append(f"step {i}")
            rec.observe(Event("step_finished", res.run_id))
            await anyio.sleep(0.01)
        await _until(lambda: store.writes[-1][2] == 40)
    assert 2 <= rec.saves <= 4, store.writes
    notes = [w[2] for w in store.writes]
    assert notes == sorted(notes)


# ------------------------------------------------------------------ the writer never delays progress
def _engine(fake: FakeLLM) -> tuple[Engine, AnthropicProvider]:
    prov = AnthropicProvider(
        "anthropic",
        "claude-haiku-4-5",
        PriceTable.load(),
        api_key="test",
        base_url=fake.anthropic_base_url,
        timeout=20,
    )
    return Engine(load_registry([]), prov), prov


@pytest.mark.anyio
async def test_progress_never_waits_for_a_write(fake_llm: FakeLLM, store: LoggingStore) -> None:
    """Every write blocks until the run is over: the engine still runs to the end, and every event
    reaches the progress sink while the first write is still stuck."""
    fake_llm.default = schema_filler
    engine, prov = _engine(fake_llm)
    res = engine.new_result("profile", "quick", {"query": "Is the sky blue?"})
    rec = RunRecorder(store, res)
    progress: list[str] = []

    def on_event(event: Event) -> None:
        rec.observe(event)
        progress.append(event.type)

    store.gate.clear()
    try:
        async with rec:
            with anyio.fail_after(30):
                out = await engine.run_profile(
                    "quick", {"query": "Is the sky blue?"}, on_event=on_event, result=res
                )
            # the run is over, yet the writer is still inside its first write
            assert out.status == "complete" and progress[-1] == "run_finished"
            assert progress.count("step_finished") >= 3
            assert store.entered.is_set() and store.writes == [] and rec.saves == 0
            store.gate.set()
        # leaving waited for the writer: the start, then one write carrying everything after it
        assert [w[0] for w in store.writes] == ["start", "save"] and rec.saves == 2
        assert store.writes[-1][1] == "complete"
        rec.finish(out)
    finally:
        store.gate.set()
        await prov.aclose()
    assert rec.errors == 0 and store.get(res.run_id) == out.trace()


@pytest.mark.anyio
async def test_writes_are_ordered_and_coalesced(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    store.gate.clear()
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        await _entered(store)  # the start write is in flight, held at the gate
        for i in range(40):
            res.notes.append(f"step {i}")
            rec.observe(Event("step_finished", res.run_id, step=f"s{i}"))
        store.gate.set()
    # 41 saves asked for, 2 made: the start, then one snapshot carrying all 40 steps
    assert store.writes == [("start", "running", 0), ("save", "running", 40)]
    assert rec.saves == 2 and len(must(store.get(res.run_id))["notes"]) == 40

    # a snapshot is taken when its write begins, so writes carry ever newer states, in order
    res2 = _result("rec0000000000002")
    rec2 = RunRecorder(store, res2)
    store.writes.clear()
    async with rec2:
        rec2.observe(Event("run_started", res2.run_id))
        for i in range(30):
            res2.notes.append(f"step {i}")
            rec2.observe(Event("step_finished", res2.run_id))
            if i % 3 == 0:
                await anyio.lowlevel.checkpoint()
    notes = [w[2] for w in store.writes]
    assert notes == sorted(notes) and notes[-1] == 30 and len(notes) <= 31


@pytest.mark.anyio
async def test_the_final_state_is_written_last(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    store.gate.clear()
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        await _entered(store)  # a write is in flight ...
        res.notes.append("step 1")
        rec.observe(Event("step_finished", res.run_id))  # ... and another one is due
        res.status, res.complete = "complete", True

        async def release() -> None:
            await anyio.sleep(0.1)  # finish() is waiting for the write in flight by now
            assert store.writes == []
            store.gate.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            await anyio.to_thread.run_sync(rec.finish, res)  # as the run service calls it
    assert store.writes[0] == ("start", "running", 0)
    assert store.writes[-1] == ("save", "complete", 1)  # the final state, after the write in flight
    assert ("save", "running", 1) not in store.writes  # the due snapshot was dropped: finish() came
    assert must(store.summary(res.run_id))["status"] == "complete"


def test_finish_without_a_writer(store: LoggingStore) -> None:
    """The CLI may use a recorder without entering it: observe() only marks saves as due, and
    finish() writes the final state."""
    res = _result()
    rec = RunRecorder(store, res)
    rec.observe(Event("run_started", res.run_id))
    rec.observe(Event("step_finished", res.run_id))
    assert store.writes == [] and store.count() == 0  # observe() never touches the disk
    res.status, res.complete = "complete", True
    rec.finish(res)
    assert store.writes == [("save", "complete", 0)] and rec.saves == 1
    assert must(store.summary(res.run_id))["status"] == "complete"


@pytest.mark.anyio
async def test_finish_after_the_writer_stopped_and_enter_twice(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        with pytest.raises(StoreError, match="already in use"):
            async with rec:
                pass  # pragma: no cover
    rec.observe(Event("step_finished", res.run_id))  # after the writer stopped: harmless, not written
    assert store.writes == [("start", "running", 0)]
    res.status = "incomplete"
    rec.finish(res)
    assert store.writes[-1] == ("save", "incomplete", 0)


@pytest.mark.anyio
async def test_an_error_in_the_body_propagates_as_it_is(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    with pytest.raises(KeyError, match="engine bug"):  # not wrapped in an exception group
        async with rec:
            rec.observe(Event("run_started", res.run_id))
            await anyio.lowlevel.checkpoint()
            raise KeyError("engine bug")
    rec.finish(res)  # still "running": the engine raised, so the run is stored as failed
    assert must(store.summary(res.run_id))["status"] == "failed"


def test_finish_records_cancelled_and_failed(store: LoggingStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    res.status, res.stop_reason = "cancelled", "cancelled by the caller"
    rec.finish(res)
    assert must(store.summary(res.run_id))["status"] == "cancelled"
    # a run still "running" at finish() means the engine raised: stored as failed, never left running
    res2 = _result("rec0000000000002")
    rec2 = RunRecorder(store, res2)
    rec2.observe(Event("run_started", res2.run_id))
    rec2.finish(res2)
    s = must(store.summary(res2.run_id))
    assert s["status"] == "failed" and "internal error" in s["stop_reason"] and s["finished_at"] is not None
    assert must(store.get(res2.run_id))["status"] == "failed"


@pytest.mark.anyio
async def test_a_broken_store_never_breaks_the_run(
    store: LoggingStore, caplog: pytest.LogCaptureFixture
) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    raw = sqlite3.connect(store.path)
    raw.execute("DROP TABLE runs")  # a real fault: every write now fails inside sqlite
    raw.commit()
    raw.close()
    async with rec:
        rec.observe(Event("run_started", res.run_id))
        await _until(lambda: rec.errors == 1)
        rec.observe(Event("step_finished", res.run_id))
        await _until(lambda: rec.errors == 2)
    res.status = "complete"
    rec.finish(res)
    assert rec.errors == 3 and rec.saves == 0
    # the store counted the three failures and warned once (at most one warning a minute)
    assert store.health.errors == 3 and store.health.failing
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "start failed: no such table: runs" in warnings[0].getMessage()
    # the final state is kept in memory (and retried by maintenance): never left `running`
    assert store.pending_finals() == 1 and must(store.get(res.run_id))["status"] == "complete"


# ------------------------------------------------------------------ with the real engine
@pytest.mark.anyio
async def test_engine_run_is_saved_as_steps_finish(fake_llm: FakeLLM, store: LoggingStore) -> None:
    fake_llm.default = schema_filler
    engine, prov = _engine(fake_llm)
    res = engine.new_result("profile", "quick", {"query": "Is the sky blue?"})
    rec = RunRecorder(store, res)

    def on_event(event: Event) -> None:
        rec.observe(event)

    try:
        async with rec:
            out = await engine.run_profile(
                "quick", {"query": "Is the sky blue?"}, on_event=on_event, result=res
            )
        rec.finish(out)
    finally:
        await prov.aclose()
    assert out is res and out.status == "complete"
    assert rec.errors == 0 and rec.saves == len(store.writes) >= 3  # saved along the way
    assert store.writes[0][:2] == ("start", "running") and store.writes[-1][:2] == ("save", "complete")
    assert store.get(res.run_id) == out.trace()
    s = must(store.summary(res.run_id))
    assert s["status"] == "complete" and s["tokens_total"] == out.tokens.total > 0


@pytest.mark.anyio
async def test_cancelled_engine_run_is_stored_cancelled_with_what_finished(
    fake_llm: FakeLLM, store: LoggingStore
) -> None:
    calls = 0

    def slow_after_first(req: Any) -> Reply:  # the first call answers, the rest hang until cancelled
        nonlocal calls
        calls += 1
        reply = schema_filler(req)
        if calls > 1:
            return Reply(json=reply.json, delay=3.0)
        return reply

    fake_llm.default = slow_after_first
    engine, prov = _engine(fake_llm)
    inputs = {"argument": "All swans are white, so this bird is white."}
    res = engine.new_result("protocol", "laserlogic", inputs)
    rec = RunRecorder(store, res)
    first_done = anyio.Event()

    def on_event(event: Event) -> None:
        rec.observe(event)
        if event.type == "step_finished":
            first_done.set()

    try:
        with anyio.CancelScope() as scope:

            async def canceller() -> None:
                await first_done.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg, rec:
                tg.start_soon(canceller)
                await engine.run_protocol("laserlogic", inputs, on_event=on_event, result=res)
        assert scope.cancelled_caught
        rec.finish(res)
    finally:
        await prov.aclose()
    s = must(store.summary(res.run_id))
    assert s["status"] == "cancelled"
    t = must(store.get(res.run_id))
    statuses = [st["status"] for st in t["entries"][0]["steps"]]
    assert statuses[0] == "ok" and "cancelled" in statuses


@pytest.mark.anyio
async def test_rejected_inputs_leave_no_row(fake_llm: FakeLLM, store: LoggingStore) -> None:
    from reasonkit.errors import InputError

    engine, prov = _engine(fake_llm)
    res = engine.new_result("protocol", "laserlogic", {})
    rec = RunRecorder(store, res)
    try:
        with pytest.raises(InputError):  # the engine's own error, never wrapped by the recorder
            async with rec:
                await engine.run_protocol("laserlogic", {"nonsense": "x"}, on_event=rec.observe, result=res)
    finally:
        rec.finish(res)
        await prov.aclose()
    assert store.count() == 0 and rec.saves == 0
    # ... but a run the caller already recorded (a background run) is never left "running"
    res2 = engine.new_result("protocol", "laserlogic", {})
    store.start(res2)
    RunRecorder(store, res2).finish(res2)
    assert must(store.summary(res2.run_id))["status"] == "failed"
