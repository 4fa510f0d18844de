"""MCP tasks and cancel requests in the run store's database, on both back ends (the SQLite file and
a real PostgreSQL server): a task is found by any store object on the same database the moment
`create` returns, expires with its time to live, and a cancel request made through one store object
is seen by another (as by the replica that executes the run)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reasonkit.store import SqliteRunStore
from reasonkit.store.base import StoreBackend


def _twin(store: StoreBackend, tmp_path: Path) -> StoreBackend:
    """A second store object on the same database: what another replica holds."""
    if isinstance(store, SqliteRunStore):
        return SqliteRunStore(store.path)
    from reasonkit.store.postgres import PostgresRunStore

    assert isinstance(store, PostgresRunStore)
    return PostgresRunStore(store.url, lease_secs=30)


def test_a_task_is_found_by_another_store_once_created(any_store: StoreBackend, tmp_path: Path) -> None:
    other = _twin(any_store, tmp_path)
    try:
        row = any_store.task_records().create("t-1", "run-1", "alice", 60.0)
        found = other.task_records().get("t-1")
        assert found == row and found.run_id == "run-1" and found.owner == "alice"
        assert found.ttl_secs == pytest.approx(60.0)
        assert other.task_records().get("t-2") is None
    finally:
        other.close()


def test_an_expired_task_is_gone(any_store: StoreBackend) -> None:
    records = any_store.task_records()
    records.create("old", "run-1", None, 0.2)
    assert records.get("old") is not None
    time.sleep(0.3)
    assert records.get("old") is None
    records.create("new", "run-2", None, 60.0)  # deletes expired rows on the way
    assert records.run(lambda conn: conn.execute("SELECT count(*) AS n FROM tasks").fetchone())["n"] == 1


def test_a_cancel_request_reaches_the_owner(any_store: StoreBackend, tmp_path: Path) -> None:
    owner = _twin(any_store, tmp_path)
    try:
        assert owner.task_records().cancels_for(["run-1", "run-2"]) == set()
        any_store.task_records().request_cancel("run-2")
        any_store.task_records().request_cancel("run-2")  # asking twice is asking once
        assert owner.task_records().cancels_for(["run-1", "run-2"]) == {"run-2"}
        assert owner.task_records().cancels_for([]) == set()
    finally:
        owner.close()
