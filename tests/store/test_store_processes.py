"""The run store across processes: concurrent writers, and a writer killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reasonkit.store import SqliteRunStore

from ._helpers import must

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and /proc semantics are POSIX")

PRELUDE = f"""
import os, sys, time
sys.path.insert(0, {str(HERE)!r})
from _helpers import make_result
from reasonkit.store import SqliteRunStore
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WRITER = """
db, tag, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = SqliteRunStore(db)
results = [make_result(f"{tag}-{i:03d}", status="running", n_steps=6, entries=2) for i in range(50)]
deadline = time.time() + 30
while not os.path.exists(go) and time.time() < deadline:  # start together
    time.sleep(0.005)
for r in results:
    store.start(r)
    r.entries[0].steps[0].status = "ok"
    store.save(r)
    r.status, r.complete, r.finished_at = "complete", True, time.time()
    store.save(r)
store.close()
print("done", tag)
"""


def test_concurrent_writers_from_four_processes(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    SqliteRunStore(db).close()  # the schema exists before the race (creation races are covered below)
    go = tmp_path / "go"
    procs = [_spawn(WRITER, str(db), f"w{n}", str(go)) for n in range(4)]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        assert out.startswith("done")
    with SqliteRunStore(db) as s:
        assert s.integrity_check() == "ok"
        rows = s.list(limit=1000)
        assert len(rows) == 200
        assert {r["status"] for r in rows} == {"complete"}
        assert {r["run_id"].split("-")[0] for r in rows} == {"w0", "w1", "w2", "w3"}
        t = must(s.get("w2-049"))
        assert t is not None and t["entries"][0]["steps"][0]["status"] == "ok"


def test_concurrent_first_open_creates_schema_once(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "runs.db"
    go = tmp_path / "go"
    code = """
    db, go = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.002)
    s = SqliteRunStore(db)
    s.save(make_result(None, n_steps=1, entries=1))
    s.close()
    """
    procs = [_spawn(code, str(db), str(go)) for _ in range(4)]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with SqliteRunStore(db) as s:
        assert s.count() == 4 and s.integrity_check() == "ok"


def _proc_state(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()[0]


KILLED = """
db = sys.argv[1]
store = SqliteRunStore(db)
for i in range(3):
    done = make_result(f"done-{i}", n_steps=8, entries=2)
    store.start(done)
    store.save(done)
run = make_result("victim", status="running", n_steps=8, entries=2)
for st in run.all_steps():
    st.status = "pending"
store.start(run)
for st in run.all_steps()[:3]:  # three steps finish, then the process "hangs" mid-run
    st.status = "ok"
    store.save(run)
print("READY", flush=True)
time.sleep(120)
"""


def test_sigkill_mid_run_leaves_readable_db_and_marks_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    p = _spawn(KILLED, str(db))
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "READY", p.stderr.read() if p.stderr else ""
        with SqliteRunStore(db) as s:
            # the owner is alive (on this host): another worker must not touch its run
            assert s.mark_interrupted() == 0
            assert must(s.summary("victim"))["status"] == "running"
        os.kill(p.pid, signal.SIGKILL)
        # not reaped yet: the killed process is a zombie, which counts as gone
        for _ in range(200):
            if _proc_state(p.pid) in ("Z", None):
                break
            time.sleep(0.01)
        with SqliteRunStore(db) as s:
            assert s.integrity_check() == "ok"
            assert must(s.summary("victim"))["status"] == "running"
            assert s.mark_interrupted() == 1
            assert s.mark_interrupted() == 0
            summ = must(s.summary("victim"))
            assert summ["status"] == "interrupted" and summ["complete"] is False
            t = must(s.get("victim"))
            assert t["status"] == "interrupted"
            assert [st["status"] for st in t["entries"][0]["steps"]][:3] == ["ok", "ok", "ok"]
            for i in range(3):
                d = s.get(f"done-{i}")
                assert d is not None and d["status"] == "complete" and len(d["entries"]) == 2
            assert {r["run_id"]: r["status"] for r in s.list()} == {
                "victim": "interrupted",
                "done-0": "complete",
                "done-1": "complete",
                "done-2": "complete",
            }
    finally:
        p.kill()
        p.communicate(timeout=10)


HAMMER = """
db = sys.argv[1]
store = SqliteRunStore(db)
store.save(make_result("before", n_steps=4, entries=1))
run = make_result("hammered", status="running", n_steps=20, entries=2)
store.start(run)
print("READY", flush=True)
i = 0
while True:  # save as fast as possible until killed: the kill lands inside a write sooner or later
    i += 1
    run.notes = [f"save {i}"]
    store.save(run)
"""


def test_sigkill_during_writes_keeps_the_last_committed_state(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    for delay in (0.05, 0.2, 0.4):
        p = _spawn(HAMMER, str(db))
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "READY"
            time.sleep(delay)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        finally:
            p.kill()
            p.communicate(timeout=10)
        with SqliteRunStore(db) as s:
            assert s.integrity_check() == "ok"
            t = must(s.get("hammered"))
            assert t is not None and t["notes"][0].startswith("save ")  # a whole, parseable trace
            assert must(s.get("before"))["status"] == "complete"
            assert s.mark_interrupted() == 1
            assert must(s.summary("hammered"))["status"] == "interrupted"


FORKER = """
db = sys.argv[1]
store = SqliteRunStore(db)
store.save(make_result("parent-1", n_steps=2, entries=1))
pid = os.fork()
if pid == 0:  # the child opens its own connection; the inherited one is left alone
    try:
        store.save(make_result("child-1", n_steps=2, entries=1))
        store.close()
    finally:
        os._exit(0)
os.waitpid(pid, 0)
store.save(make_result("parent-2", n_steps=2, entries=1))
print(store.count(), store.integrity_check())
store.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_store_survives_fork(tmp_path: Path) -> None:
    p = _spawn(FORKER, str(tmp_path / "runs.db"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split() == ["3", "ok"]
