"""What only the PostgreSQL store has: versioned migrations under an advisory lock, leases that let
one replica mark another's runs interrupted, and errors that never show the password."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from reasonkit.errors import StoreError
from reasonkit.store import postgres_schema
from reasonkit.store.base import redact_url
from reasonkit.store.postgres import PostgresRunStore

from ._helpers import make_result, must

ROOT = Path(__file__).resolve().parents[2]


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _versions(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM reasonkit_schema ORDER BY version")]


def test_a_new_database_is_migrated_once_and_reopening_is_a_no_op(pg_url: str) -> None:
    with PostgresRunStore(pg_url) as s:
        assert s.schema_version == postgres_schema.SCHEMA_VERSION == 3
        s.save(make_result("a1", n_steps=1, entries=1))
    with PostgresRunStore(pg_url) as s:
        assert s.count() == 1
    assert _versions(pg_url) == [1, 2, 3]


def test_concurrent_first_start_migrates_once(pg_url: str) -> None:
    """Four replicas start at once on an empty database: one migrates, the others wait, all work."""
    code = (
        "import sys\n"
        "from reasonkit.store.postgres import PostgresRunStore\n"
        "from tests.store._helpers import make_result\n"
        "s = PostgresRunStore(sys.argv[1])\n"
        "s.save(make_result('p' + sys.argv[2], n_steps=1, entries=1))\n"
        "s.close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, pg_url, str(i)], cwd=ROOT, stderr=subprocess.PIPE)
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()
    assert _versions(pg_url) == [1, 2, 3]
    with PostgresRunStore(pg_url) as s:
        assert sorted(r["run_id"] for r in s.list()) == ["p0", "p1", "p2", "p3"]


def test_a_version_1_database_is_upgraded_and_keeps_its_runs(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(postgres_schema._VERSION_TABLE)
        for statement in postgres_schema.MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO reasonkit_schema VALUES (1, 0)")
        conn.execute(
            "INSERT INTO runs (run_id, kind, name, status, started_at, updated_at, trace) "
            "VALUES ('old', 'protocol', 'gigathink', 'complete', 1, 1, '{\"run_id\": \"old\"}')"
        )
    with PostgresRunStore(pg_url) as s:
        assert s.schema_version == 3
        assert must(s.get("old")) == {"run_id": "old", "owner": None}  # an old run: admins only
        assert s.lease("old") == ("", None)
    assert _versions(pg_url) == [1, 2, 3]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresRunStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO reasonkit_schema VALUES (99, 0)")
    with pytest.raises(StoreError, match="newer ReasonKit.*schema 99"):
        PostgresRunStore(pg_url)


def test_a_dead_replicas_runs_are_interrupted_after_its_lease(pg_url: str) -> None:
    owner = PostgresRunStore(pg_url, lease_secs=2)
    owner.owner_id = "replica-a"
    other = PostgresRunStore(pg_url, lease_secs=2)
    other.owner_id = "replica-b"
    try:
        owner.start(make_result("r1", status="running", n_steps=2, entries=1))
        first = must(owner.lease("r1"))
        assert first[0] == "replica-a"
        # while its replica lives the lease is renewed and nobody marks the run
        assert owner._heartbeat is not None
        _until(lambda: owner._heartbeat is not None and owner._heartbeat.beats >= 3)
        assert other.mark_interrupted() == 0
        assert must(other.summary("r1"))["status"] == "running"
        assert (must(owner.lease("r1"))[1] or 0) > (first[1] or 0)
        # the replica dies (its heartbeat stops): once the lease expires a read on the other one
        # marks the run interrupted, trace included
        owner.close()
        _until(lambda: must(other.summary("r1"))["status"] == "interrupted")
        trace = must(other.get("r1"))
        assert trace["status"] == "interrupted" and trace["complete"] is False
        assert "stopped renewing its lease (2s)" in trace["stop_reason"]
        assert other.mark_interrupted() == 0
    finally:
        owner.close()
        other.close()


def test_finished_runs_are_never_marked(pg_url: str) -> None:
    with PostgresRunStore(pg_url, lease_secs=2) as s:
        s.save(make_result("done", status="complete", n_steps=1, entries=1))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE runs SET lease_until = 0")
        assert s.mark_interrupted() == 0
        assert must(s.summary("done"))["status"] == "complete"


def test_unreachable_database_is_a_clear_error_without_the_password() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://rk:Sup3r-Secret-pw@127.0.0.1:{port}/db"
    with pytest.raises(StoreError, match="cannot be reached") as info:
        PostgresRunStore(url, connect_timeout=2)
    assert "Sup3r-Secret-pw" not in str(info.value)
    assert "rk:***@127.0.0.1" in str(info.value)


def test_unparseable_url_never_shows_the_password() -> None:
    """psycopg quotes a URL it cannot parse in its error; the store masks it."""
    with pytest.raises(StoreError) as info:
        PostgresRunStore("postgresql://rk:Sup3r-Secret-pw@[::1/db", connect_timeout=2)
    assert "Sup3r-Secret-pw" not in str(info.value)
    assert "rk:***@" in str(info.value)


def test_redact_url() -> None:
    assert redact_url("postgresql://u:p%40ss@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert redact_url("postgresql://h/db?user=u&password=x") == "postgresql://h/db?user=u&password=***"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
