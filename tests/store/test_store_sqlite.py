"""SqliteRunStore in one process: round trip, listing, pruning, schema, crash bookkeeping."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from reasonkit.config import load_settings
from reasonkit.engine.result import RunResult
from reasonkit.errors import InputError, StoreError
from reasonkit.store import SqliteRunStore

from ._helpers import make_result, must


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteRunStore(tmp_path / "data" / "runs.db")
    yield s
    s.close()


def test_creates_parent_dirs_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "runs.db"
    with SqliteRunStore(path) as s:
        assert s.path == path and path.exists()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
        assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    finally:
        raw.close()
    # reopening an existing database keeps it
    with SqliteRunStore(path) as s:
        assert s.count() == 0


def test_round_trip_full_trace(store: SqliteRunStore) -> None:
    res = make_result(n_steps=12, entries=2)
    store.start(res)
    store.save(res)
    got = store.get(res.run_id)
    assert got == res.trace()
    # the saved trace is a complete RunResult again
    again = RunResult.model_validate(got)
    assert again.all_steps()[0].items[0].prompt == res.all_steps()[0].items[0].prompt
    assert again.inputs["query"].startswith("Is it true that {{ inputs.query }}")
    summ = must(store.summary(res.run_id))
    assert summ is not None and "trace" not in summ
    assert summ["status"] == "complete" and summ["complete"] is True and summ["meets_threshold"] is True
    assert summ["kind"] == "profile" and summ["name"] == "paranoid"
    assert summ["confidence"] == pytest.approx(0.83)
    assert summ["tokens"] == {
        "input": res.tokens.input,
        "output": res.tokens.output,
        "cache_read": 0,
        "cache_write": 0,
    }
    assert summ["tokens_total"] == res.tokens.total
    assert summ["cost_usd"] == pytest.approx(res.cost_usd)
    assert summ["duration_ms"] == pytest.approx(12500.0)
    assert summ["inputs"] == res.inputs
    assert summ["provider"] == "anthropic" and summ["model"] == "claude-test"
    assert summ["owner_pid"] == os.getpid() and summ["owner_host"] == socket.gethostname()
    assert summ["answer"] == res.answer
    assert store.get("nope") is None and store.summary("nope") is None


def test_start_then_saves_update_in_place(store: SqliteRunStore) -> None:
    res = make_result(status="running", n_steps=3, entries=1)
    res.entries[0].steps[0].status = "running"
    store.start(res)
    s = must(store.summary(res.run_id))
    assert s is not None and s["status"] == "running" and s["finished_at"] is None
    started = s["started_at"]
    res.entries[0].steps[0].status = "ok"
    res.status, res.complete, res.confidence, res.finished_at = "incomplete", False, 0.42, time.time()
    res.stop_reason = "token budget of 10 reached"
    store.save(res)
    s = must(store.summary(res.run_id))
    assert s is not None
    assert (s["status"], s["confidence"], s["stop_reason"]) == (
        "incomplete",
        0.42,
        "token budget of 10 reached",
    )
    assert s["started_at"] == started and s["finished_at"] is not None
    assert must(store.get(res.run_id))["entries"][0]["steps"][0]["status"] == "ok"
    assert store.count() == 1


def test_list_newest_first_and_filters(store: SqliteRunStore) -> None:
    now = time.time()
    runs = [
        make_result(
            "r1",
            kind="protocol",
            name="gigathink",
            status="complete",
            started_at=now - 300,
            n_steps=3,
            entries=1,
        ),
        make_result(
            "r2",
            kind="profile",
            name="balanced",
            status="incomplete",
            started_at=now - 200,
            n_steps=3,
            entries=1,
        ),
        make_result(
            "r3",
            kind="protocol",
            name="laserlogic",
            status="failed",
            started_at=now - 100,
            n_steps=3,
            entries=1,
        ),
        make_result(
            "r4",
            kind="protocol",
            name="gigathink",
            status="running",
            started_at=now - 50,
            n_steps=3,
            entries=1,
        ),
    ]
    for r in runs:
        store.save(r)
    rows = store.list()
    assert [r["run_id"] for r in rows] == ["r4", "r3", "r2", "r1"]
    assert set(rows[0]) >= {
        "run_id",
        "started_at",
        "kind",
        "name",
        "status",
        "confidence",
        "duration_ms",
        "cost_usd",
        "tokens_total",
    }
    assert isinstance(rows[0]["started_at"], float)
    assert [r["run_id"] for r in store.list(limit=2)] == ["r4", "r3"]
    assert [r["run_id"] for r in store.list(status="failed")] == ["r3"]
    assert [r["run_id"] for r in store.list(kind_or_name="gigathink")] == ["r4", "r1"]
    assert [r["run_id"] for r in store.list(kind_or_name="profile")] == ["r2"]
    assert [r["run_id"] for r in store.list(status="complete", kind_or_name="gigathink")] == ["r1"]
    assert store.list(status="interrupted") == []
    with pytest.raises(InputError, match="unknown run status 'done'.*running, complete"):
        store.list(status="done")


def test_prune_by_age_and_count_never_running(store: SqliteRunStore) -> None:
    now = time.time()
    day = 86400
    store.save(make_result("old1", started_at=now - 40 * day, n_steps=2, entries=1))
    store.save(make_result("old2", started_at=now - 31 * day, status="failed", n_steps=2, entries=1))
    store.save(make_result("oldrun", started_at=now - 50 * day, status="running", n_steps=2, entries=1))
    for i in range(5):
        store.save(make_result(f"new{i}", started_at=now - (5 - i) * 60, n_steps=2, entries=1))
    assert store.prune() == 0
    assert store.prune(max_age_days=30) == 2
    assert {r["run_id"] for r in store.list(limit=100)} == {"oldrun", "new0", "new1", "new2", "new3", "new4"}
    assert store.prune(max_count=2) == 3
    assert [r["run_id"] for r in store.list(limit=100)] == ["new4", "new3", "oldrun"]
    assert store.prune(max_age_days=0, max_count=0) == 2
    assert [r["run_id"] for r in store.list()] == ["oldrun"]  # a running run is never deleted
    with pytest.raises(InputError):
        store.prune(max_count=-1)
    with pytest.raises(ValueError):  # InputError is a ValueError too
        store.prune(max_age_days=-1)
    assert store.integrity_check() == "ok"
    raw = sqlite3.connect(store.path)
    try:  # freed pages went back to the file system (incremental auto_vacuum)
        assert raw.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        raw.close()


def test_resolve_prefix(store: SqliteRunStore) -> None:
    for rid in ("abc111", "abc222", "abd333", "abc"):
        store.save(make_result(rid, n_steps=1, entries=1))
    assert store.resolve("abc") == ["abc"]  # an exact id wins over a prefix
    assert sorted(store.resolve("abc1")) == ["abc111"]
    assert sorted(store.resolve("ab")) == ["abc", "abc111", "abc222", "abd333"]
    assert store.resolve("zz") == [] and store.resolve("") == []
    assert store.resolve("a%") == [] and store.resolve("ab_") == []  # no LIKE wildcards


def test_for_settings_uses_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "dd")})
    with SqliteRunStore.for_settings(settings) as s:
        assert s.path == tmp_path / "dd" / "runs.db"
        assert s.path.exists()


def test_newer_schema_and_garbage_file_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "runs.db"
    SqliteRunStore(p).close()
    raw = sqlite3.connect(p)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="newer ReasonKit"):
        SqliteRunStore(p)
    bad = tmp_path / "bad" / "runs.db"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be"):
        SqliteRunStore(bad)


# ------------------------------------------------------------------ mark_interrupted (same process)
def _set_owner(path: Path, run_id: str, **cols: object) -> None:
    raw = sqlite3.connect(path)
    try:
        sets = ", ".join(f"{k} = ?" for k in cols)
        raw.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*cols.values(), run_id])
        raw.commit()
    finally:
        raw.close()


def test_mark_interrupted_leaves_live_owners_alone(store: SqliteRunStore) -> None:
    mine = make_result("mine", status="running", n_steps=2, entries=1)
    store.start(mine)
    assert store.mark_interrupted() == 0
    assert must(store.summary("mine"))["status"] == "running"


def test_mark_interrupted_dead_reused_and_foreign_owners(store: SqliteRunStore) -> None:
    for rid in ("dead", "reused", "foreign_fresh", "foreign_stale", "done"):
        store.start(make_result(rid, status="running", n_steps=2, entries=1))
    store.save(make_result("done", status="complete", n_steps=2, entries=1))
    # a pid that cannot exist
    _set_owner(store.path, "dead", owner_pid=2**22 + 12345)
    # our own pid, but a different process start time: the pid was reused by us after a crash
    _set_owner(store.path, "reused", owner_start="1")
    _set_owner(store.path, "foreign_fresh", owner_host="some-other-host", owner_pid=1)
    _set_owner(
        store.path,
        "foreign_stale",
        owner_host="some-other-host",
        owner_pid=1,
        updated_at=time.time() - 7 * 3600,
    )
    assert store.mark_interrupted() == 3
    st = {r["run_id"]: r["status"] for r in store.list()}
    assert st == {
        "dead": "interrupted",
        "reused": "interrupted",
        "foreign_stale": "interrupted",
        "foreign_fresh": "running",
        "done": "complete",
    }
    t = must(store.get("dead"))
    assert t["status"] == "interrupted" and t["complete"] is False
    assert "ended before the run finished" in t["stop_reason"]
    assert must(store.summary("dead"))["stop_reason"] == t["stop_reason"]
    assert store.mark_interrupted() == 0


def test_trace_json_is_plain_sqlite(store: SqliteRunStore) -> None:
    """The trace column is plain JSON text: sqlite3's own JSON functions can query it."""
    store.save(make_result("j1", n_steps=2, entries=1))
    raw = sqlite3.connect(store.path)
    try:
        (name,) = raw.execute("SELECT json_extract(trace, '$.name') FROM runs WHERE run_id = 'j1'").fetchone()
        (text,) = raw.execute("SELECT trace FROM runs WHERE run_id = 'j1'").fetchone()
    finally:
        raw.close()
    assert name == "paranoid" and json.loads(text)["run_id"] == "j1"


def test_start_trace_and_save_trace_take_a_trace(store: SqliteRunStore) -> None:
    res = make_result("t1", status="running", n_steps=2, entries=1)
    store.start_trace(res.trace())
    assert must(store.summary("t1"))["status"] == "running"
    res.status, res.finished_at = "complete", time.time()
    store.save_trace(res.trace())
    assert must(store.get("t1")) == res.trace()
    # start_trace records "running" whatever the trace says; save_trace keeps the start time
    store.start_trace(make_result("t2", status="complete", n_steps=1, entries=1).trace())
    assert must(store.summary("t2"))["status"] == "running"
    started = must(store.summary("t1"))["started_at"]
    later = res.trace()
    later["started_at"] = started + 999
    store.save_trace(later)
    assert must(store.summary("t1"))["started_at"] == started


def test_interrupted_keeps_an_unparseable_trace(store: SqliteRunStore) -> None:
    store.start(make_result("garbled", status="running", n_steps=1, entries=1))
    raw = sqlite3.connect(store.path)
    try:
        raw.execute(
            "UPDATE runs SET trace = 'not json', owner_pid = ? WHERE run_id = 'garbled'", (2**22 + 12345,)
        )
        raw.commit()
    finally:
        raw.close()
    assert store.mark_interrupted() == 1
    summ = must(store.summary("garbled"))
    assert summ["status"] == "interrupted" and "ended before the run finished" in summ["stop_reason"]


# ------------------------------------------------------------------ retention
def _old_runs(store: SqliteRunStore, prefix: str, n: int) -> None:
    for i in range(n):
        store.save(make_result(f"{prefix}{i}", started_at=time.time() - 40 * 86400, n_steps=1, entries=1))


def test_prune_if_due_prunes_at_most_once_per_interval(store: SqliteRunStore) -> None:
    _old_runs(store, "a", 3)
    assert store.prune_if_due(30, None) == 3  # the first call always prunes
    _old_runs(store, "b", 2)
    assert store.prune_if_due(30, None) == 0  # not due: nothing happens ...
    assert store.count() == 2  # ... and nothing was deleted
    assert store.prune_if_due(30, None, every_s=0) == 2  # due again
    assert store.count() == 0
    # keep the newest N finished runs
    for i in range(4):
        store.save(make_result(f"c{i}", started_at=time.time() - i, n_steps=1, entries=1))
    assert store.prune_if_due(None, 1, every_s=0) == 3
    assert [r["run_id"] for r in store.list()] == ["c0"]


def test_prune_if_due_after_the_interval_and_when_nothing_is_configured(
    store: SqliteRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    assert store.prune_if_due(None, None) == 0  # nothing configured: never prunes, never marks
    _old_runs(store, "a", 2)
    assert store.prune_if_due(30, None, every_s=300) == 2
    _old_runs(store, "b", 2)
    clock[0] += 299
    assert store.prune_if_due(30, None, every_s=300) == 0
    clock[0] += 1
    assert store.prune_if_due(30, None, every_s=300) == 2


def test_prune_if_due_failure_is_raised_and_not_retried_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    s = SqliteRunStore(path)
    try:
        _old_runs(s, "a", 1)
        raw = sqlite3.connect(path)
        raw.execute("DROP TABLE runs")  # a real fault: the DELETE fails inside sqlite
        raw.commit()
        raw.close()
        with pytest.raises(StoreError, match="no such table"):
            s.prune_if_due(30, None)
        assert s.prune_if_due(30, None) == 0  # the failed attempt counts: no I/O until due again
    finally:
        s.close()


def test_importing_the_store_stays_light() -> None:
    """`rk runs` imports the store: it must not pull in the engine (pydantic) or anyio."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from reasonkit.errors import StoreError\n"
        "from reasonkit.store import SqliteRunStore\n"
        "print(sorted(m for m in ('anyio', 'pydantic', 'reasonkit.engine') if m in sys.modules))\n"
        "from reasonkit.store import RunRecorder\n"
        "print('anyio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
