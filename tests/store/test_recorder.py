"""RunRecorder: saves as events arrive, forwards them, survives store faults; with the real engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from reasonkit.engine import Engine, Event
from reasonkit.engine.result import RunResult, StepTrace
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import PriceTable
from reasonkit.providers.sdk import AnthropicProvider
from reasonkit.store import RunRecorder, RunStore

from ._helpers import must

try:
    from tests.fakes.fake_llm import FakeLLM, Reply, schema_filler
except ImportError:  # pragma: no cover - plain `pytest` puts tests/ itself on sys.path
    from fakes.fake_llm import FakeLLM, Reply, schema_filler  # type: ignore[no-redef]


@pytest.fixture
def store(tmp_path: Path):
    s = RunStore(tmp_path / "runs.db")
    yield s
    s.close()


def _result() -> RunResult:
    res = RunResult(
        run_id="rec0000000000001",
        kind="protocol",
        name="gigathink",
        inputs={"query": "q"},
        started_at=1.0e9,
        provider="anthropic",
        model="m",
    )
    return res


@pytest.mark.anyio
async def test_saves_on_the_right_events_and_forwards_everything(store: RunStore) -> None:
    res = _result()
    seen: list[str] = []
    rec = RunRecorder(store, res, forward=lambda ev: seen.append(ev.type))
    await rec.on_event(Event("run_started", res.run_id))
    assert must(store.summary(res.run_id))["status"] == "running"
    assert rec.saves == 1

    res.entries = []
    from reasonkit.engine.result import EntryResult

    res.entries.append(EntryResult(entry="gigathink", protocol="gigathink", status="running"))
    await rec.on_event(Event("entry_started", res.run_id, entry="gigathink"))
    res.entries[0].steps.append(
        StepTrace(step_id="dims", protocol="gigathink", entry="gigathink", kind="generate", status="running")
    )
    await rec.on_event(Event("step_started", res.run_id, entry="gigathink", step="dims"))
    assert rec.saves == 1  # started events are not saved
    assert must(store.get(res.run_id))["entries"] == []

    res.entries[0].steps[0].status = "ok"
    res.entries[0].steps[0].confidence = 0.9
    await rec.on_event(
        Event("step_finished", res.run_id, entry="gigathink", step="dims", status="ok", confidence=0.9)
    )
    assert rec.saves == 2
    assert must(store.get(res.run_id))["entries"][0]["steps"][0]["status"] == "ok"

    res.entries[0].status = "complete"
    await rec.on_event(Event("entry_finished", res.run_id, entry="gigathink", status="complete"))
    await rec.on_event(Event("entry_skipped", res.run_id, entry="other", message="confidence high enough"))
    res.status, res.complete, res.confidence = "complete", True, 0.9
    await rec.on_event(Event("run_finished", res.run_id, status="complete", confidence=0.9))
    assert rec.saves == 5
    assert must(store.summary(res.run_id))["status"] == "complete"
    rec.finish(res)
    assert rec.saves == 6 and rec.errors == 0
    assert seen == [
        "run_started",
        "entry_started",
        "step_started",
        "step_finished",
        "entry_finished",
        "entry_skipped",
        "run_finished",
    ]
    # after finish() later events are forwarded but never overwrite the final state
    res.status = "running"
    await rec.on_event(Event("step_finished", res.run_id))
    assert must(store.summary(res.run_id))["status"] == "complete" and rec.saves == 6


@pytest.mark.anyio
async def test_async_forward_is_awaited(store: RunStore) -> None:
    got: list[str] = []

    async def fwd(ev: Event) -> None:
        await anyio.lowlevel.checkpoint()
        got.append(ev.type)

    res = _result()
    rec = RunRecorder(store, res, forward=fwd)
    await rec.on_event(Event("run_started", res.run_id))
    await rec.on_event(Event("step_finished", res.run_id))
    assert got == ["run_started", "step_finished"]


@pytest.mark.anyio
async def test_concurrent_events_are_coalesced_and_the_last_state_wins(store: RunStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    await rec.on_event(Event("run_started", res.run_id))

    async def finish_step(i: int) -> None:
        res.notes.append(f"step {i}")
        await rec.on_event(Event("step_finished", res.run_id, step=f"s{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(finish_step, i)
    assert 2 <= rec.saves <= 41  # fewer writes than events when they pile up
    assert len(must(store.get(res.run_id))["notes"]) == 40


def test_finish_records_cancelled_and_failed(store: RunStore) -> None:
    res = _result()
    rec = RunRecorder(store, res)
    res.status, res.stop_reason = "cancelled", "cancelled by the caller"
    rec.finish(res)
    assert must(store.summary(res.run_id))["status"] == "cancelled"
    # a run still "running" at finish() means the engine raised: stored as failed, never left running
    res2 = _result()
    res2.run_id = "rec0000000000002"
    rec2 = RunRecorder(store, res2)
    rec2.run_started = True  # as if run_started had been seen
    rec2.finish(res2)
    s = must(store.summary(res2.run_id))
    assert s["status"] == "failed" and "internal error" in s["stop_reason"] and s["finished_at"] is not None
    assert must(store.get(res2.run_id))["status"] == "failed"


@pytest.mark.anyio
async def test_a_broken_store_never_breaks_the_run(store: RunStore, caplog: pytest.LogCaptureFixture) -> None:
    res = _result()
    seen: list[str] = []
    rec = RunRecorder(store, res, forward=lambda ev: seen.append(ev.type))
    raw = sqlite3.connect(store.path)
    raw.execute("DROP TABLE runs")  # a real fault: every write now fails inside sqlite
    raw.commit()
    raw.close()
    await rec.on_event(Event("run_started", res.run_id))
    await rec.on_event(Event("step_finished", res.run_id))
    res.status = "complete"
    rec.finish(res)
    assert rec.errors == 3 and rec.saves == 0
    assert seen == ["run_started", "step_finished"]
    assert "could not save to the run store" in caplog.text


# ------------------------------------------------------------------ with the real engine
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
async def test_engine_run_is_saved_as_steps_finish(fake_llm: FakeLLM, store: RunStore) -> None:
    fake_llm.default = schema_filler
    engine, prov = _engine(fake_llm)
    res = engine.new_result("profile", "quick", {"query": "Is the sky blue?"})
    observed: list[tuple[str, str | None, str | None]] = []
    reader = RunStore(store.path)  # a second handle, as another process would read it

    def check(ev: Event) -> None:
        # forward runs after the save: what the event reports is already in the database
        if ev.type == "step_finished" and ev.item is None:
            t = must(reader.get(res.run_id))
            step = next(
                s
                for e in t["entries"]
                for s in e["steps"]
                if s["step_id"] == ev.step and e["entry"] == ev.entry
            )
            observed.append((ev.type, ev.step, step["status"]))

    rec = RunRecorder(store, res, forward=check)
    try:
        out = await engine.run_profile(
            "quick", {"query": "Is the sky blue?"}, on_event=rec.on_event, result=res
        )
        rec.finish(out)
    finally:
        await prov.aclose()
        reader.close()
    assert out is res and out.status == "complete"
    assert observed and all(status in ("ok", "degraded") for _, _, status in observed)
    assert rec.errors == 0
    assert store.get(res.run_id) == out.trace()
    s = must(store.summary(res.run_id))
    assert s["status"] == "complete" and s["tokens_total"] == out.tokens.total > 0


@pytest.mark.anyio
async def test_cancelled_engine_run_is_stored_cancelled_with_what_finished(
    fake_llm: FakeLLM, store: RunStore
) -> None:
    calls = 0

    def slow_after_first(req):  # the first call answers, the rest hang until the run is cancelled
        nonlocal calls
        calls += 1
        r = schema_filler(req)
        if calls > 1:
            return Reply(json=r.json, delay=3.0)
        return r

    fake_llm.default = slow_after_first
    engine, prov = _engine(fake_llm)
    res = engine.new_result(
        "protocol", "laserlogic", {"argument": "All swans are white, so this bird is white."}
    )
    rec = RunRecorder(store, res)
    first_done = anyio.Event()

    async def watch(ev: Event) -> None:
        if ev.type == "step_finished":
            first_done.set()

    rec.forward = watch
    try:
        with anyio.CancelScope() as scope:

            async def canceller() -> None:
                await first_done.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(canceller)
                await engine.run_protocol(
                    "laserlogic",
                    {"argument": "All swans are white, so this bird is white."},
                    on_event=rec.on_event,
                    result=res,
                )
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
async def test_rejected_inputs_leave_no_row(fake_llm: FakeLLM, store: RunStore) -> None:
    from reasonkit.engine import InputError

    engine, prov = _engine(fake_llm)
    res = engine.new_result("protocol", "laserlogic", {})
    rec = RunRecorder(store, res)
    try:
        with pytest.raises(InputError):
            await engine.run_protocol("laserlogic", {"nonsense": "x"}, on_event=rec.on_event, result=res)
    finally:
        rec.finish(res)
        await prov.aclose()
    assert store.count() == 0 and rec.saves == 0
    # ... but a run the caller already recorded (a background run) is never left "running"
    res2 = engine.new_result("protocol", "laserlogic", {})
    store.start(res2)
    RunRecorder(store, res2).finish(res2)
    assert must(store.summary(res2.run_id))["status"] == "failed"
