"""The run store is off the hot path: with the database write-locked by another connection (as a busy
or slow disk would hold it), a run through the run service still reports every step to its progress
sink and runs to the end; its writes land once the lock is released. Crash safety stays: a process
killed with SIGKILL mid-run leaves its started run, with the steps that had finished, to be marked
`interrupted`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget, Event
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.anthropic import AnthropicProvider
from reasonkit.providers.base import PriceTable
from reasonkit.runs import RunService
from reasonkit.store import SqliteRunStore

from ._helpers import must

try:
    from tests.fakes.fake_llm import FakeLLM, RecordedRequest, Reply, schema_filler
except ImportError:  # pragma: no cover - plain `pytest` puts tests/ itself on sys.path
    from fakes.fake_llm import FakeLLM, RecordedRequest, Reply, schema_filler  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent.parent


def _provider(fake: FakeLLM) -> AnthropicProvider:
    return AnthropicProvider(
        "anthropic",
        "claude-haiku-4-5",
        PriceTable.load(),
        api_key="test",
        base_url=fake.anthropic_base_url,
        timeout=20,
    )


@pytest.mark.anyio
async def test_a_write_locked_store_never_delays_progress_or_the_run(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.default = schema_filler
    settings = load_settings(
        environ={"REASONKIT_DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL_AUTO": "false"}
    )
    store = SqliteRunStore(tmp_path / "data" / "runs.db")
    service = RunService(settings, load_registry([]), store=store, metrics=Metrics())
    provider = _provider(fake_llm)
    run = service.prepare("profile", "quick", {"query": "Is the sky blue?"}, provider, method="test")
    run_id = run.result.run_id
    events: list[tuple[str, bool]] = []  # (event type, was the run stored at that moment?)
    finished = anyio.Event()

    def progress(event: Event) -> None:
        events.append((event.type, False))
        if event.type == "run_finished":
            finished.set()

    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # hold the write lock: every write of the run has to wait
    locked = True
    try:
        async with anyio.create_task_group() as tg:
            outcome: dict[str, Any] = {}

            async def execute() -> None:
                outcome["result"] = await service.execute(run, Budget(seconds=60), progress)

            tg.start_soon(execute)
            with anyio.fail_after(30):
                await finished.wait()  # every step ran and was reported while no write could land
            steps = [t for t, _ in events if t == "step_finished"]
            assert len(steps) >= 5 and events[0][0] == "run_started"
            assert run.result.status == "complete"
            assert store.summary(run_id) is None  # not even the start is written yet
            assert "result" not in outcome  # the final save waits for the lock, after the run
            blocker.execute("ROLLBACK")
            locked = False
        result = outcome["result"]
    finally:
        if locked:
            blocker.execute("ROLLBACK")
        blocker.close()
        await provider.aclose()
    # the writes landed after the lock was released: the stored trace is the final one
    assert result.status == "complete"
    assert must(store.summary(run_id))["status"] == "complete"
    assert must(store.get(run_id)) == result.trace()
    store.close()


@pytest.mark.anyio
async def test_observe_returns_at_once_while_the_writer_is_stuck(tmp_path: Path) -> None:
    """With the writer blocked inside a write, 2,000 observe() calls (what the engine does per event)
    all return without a write, and the save requests they make are coalesced into a few writes."""
    from reasonkit.engine.result import RunResult
    from reasonkit.store import RunRecorder

    store = SqliteRunStore(tmp_path / "runs.db")
    res = RunResult(run_id="hot0000000000001", kind="protocol", name="p", inputs={}, started_at=time.time())
    rec = RunRecorder(store, res)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        async with rec:
            rec.observe(Event("run_started", res.run_id))
            for _ in range(2000):
                rec.observe(Event("step_finished", res.run_id))
            assert rec.saves == 0  # nothing was written: the writer is stuck behind the lock
            blocker.execute("ROLLBACK")
        # 2,001 save requests became a handful of writes (coalesced)
        assert 1 <= rec.saves <= 3, rec.saves
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


CHILD = """
import sys, anyio
from reasonkit.config import load_settings
from reasonkit.engine import Budget
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.anthropic import AnthropicProvider
from reasonkit.providers.base import PriceTable
from reasonkit.runs import RunService
from reasonkit.store import SqliteRunStore

data, base_url = sys.argv[1], sys.argv[2]
settings = load_settings(environ={"REASONKIT_DATA_DIR": data, "LOCAL_MODEL_AUTO": "false"})
service = RunService(settings, load_registry([]), metrics=Metrics())
service.open_store()
provider = AnthropicProvider(
    "anthropic", "claude-haiku-4-5", PriceTable.load(), api_key="t", base_url=base_url, timeout=300
)
run = service.prepare("protocol", "gigathink", {"query": "q"}, provider, method="test")
print(run.result.run_id, flush=True)
anyio.run(service.execute, run, Budget(seconds=600))
"""


def test_sigkill_mid_run_is_found_interrupted_with_its_finished_steps(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    """The real recorder in a real process: two LLM calls answer, every later one hangs; the process
    is killed with SIGKILL once a finished step is stored. The next store to look marks the run
    interrupted and keeps the steps that had finished."""
    served = 0
    lock = threading.Lock()

    def handler(req: RecordedRequest) -> Reply:
        nonlocal served
        with lock:
            served += 1
            fast = served <= 2
        reply = schema_filler(req)
        return reply if fast else dataclasses.replace(reply, delay=120)

    fake_llm.default = handler
    data = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(data), fake_llm.anthropic_base_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert run_id, child.stderr.read() if child.stderr else ""
        db = data / "runs.db"
        deadline = time.monotonic() + 30

        def stored_ok_steps() -> int:
            if not db.exists():
                return 0
            with SqliteRunStore(db) as view:
                trace = view.get(run_id)
            if trace is None:
                return 0
            return sum(1 for e in trace["entries"] for s in e["steps"] if s["status"] == "ok")

        while stored_ok_steps() < 1:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "no finished step was stored in time"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        with SqliteRunStore(db) as store:
            assert must(store.summary(run_id))["status"] == "running"
            assert store.mark_interrupted() == 1
            trace = must(store.get(run_id))
            assert trace["status"] == "interrupted" and trace["complete"] is False
            ok = [s["step_id"] for e in trace["entries"] for s in e["steps"] if s["status"] == "ok"]
            assert "dimensions" in ok, json.dumps(trace)[:500]
            assert store.integrity_check() == "ok"
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def test_concurrent_writes_share_transactions(tmp_path: Path) -> None:
    """One writer at a time, in batches: 40 threads that save while the database is locked are
    committed in a couple of transactions once it is free, and every row lands."""
    from ._helpers import make_result

    store = SqliteRunStore(tmp_path / "runs.db")
    traces = [make_result(f"g{i:02d}", n_steps=2, entries=1).trace() for i in range(40)]
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    errors: list[BaseException] = []

    def save(trace: dict[str, Any]) -> None:
        try:
            store.save_trace(trace)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(t,)) for t in traces]
    before = store._group.transactions
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(store._group._queue) < 39:  # all but the one stuck at the lock have queued
            assert time.monotonic() < deadline, len(store._group._queue)
            time.sleep(0.005)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for t in threads:
        t.join(20)
    assert errors == [] and store.count() == 40
    assert store._group.transactions - before <= 3
    store.close()
