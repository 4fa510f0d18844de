"""The connection pool under the run store: threads, leaks, locked databases, errors as StoreError."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from reasonkit.errors import ReasonKitError, StoreError
from reasonkit.store import SqliteRunStore
from reasonkit.store.connections import ConnectionPool, is_busy, write_transaction

from ._helpers import make_result, must


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteRunStore(tmp_path / "data" / "runs.db")
    yield s
    s.close()


def test_threads_share_one_store(store: SqliteRunStore) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(15):
                result = make_result(f"t{thread}-{i}", n_steps=3, entries=1)
                store.start(result)
                store.save(result)
                assert store.get(result.run_id) is not None
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.count() == 120
    assert store.integrity_check() == "ok"
    assert len(store._pool.idle) <= store.pool_size  # threads that ended left no connection behind
    store.close()
    assert store._pool.idle == []
    assert store.count() == 120  # reopens lazily after close()


def test_short_lived_threads_do_not_leak_connections(store: SqliteRunStore) -> None:
    before = sum(1 for o in gc.get_objects() if isinstance(o, sqlite3.Connection))
    for i in range(30):
        result = make_result(f"short-{i}", n_steps=1, entries=1)
        thread = threading.Thread(target=store.save, args=(result,))
        thread.start()
        thread.join()
    gc.collect()
    after = sum(1 for o in gc.get_objects() if isinstance(o, sqlite3.Connection))
    assert after - before <= store.pool_size
    assert store.count() == 30


def test_locked_database_is_retried_then_reported(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    s = SqliteRunStore(path, busy_timeout_ms=30)
    try:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock ...
        release = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
        release.start()
        t0 = time.monotonic()
        s.save(make_result("waited", n_steps=2, entries=1))  # ... longer than busy_timeout: retried
        assert time.monotonic() - t0 >= 0.3
        release.join()
        assert must(s.summary("waited"))["status"] == "complete"
        # a lock that outlasts every retry is a clear StoreError for the caller (the recorder logs it)
        s.write_attempts = 2
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked") as caught:
            s.save(make_result("gave-up", n_steps=2, entries=1))
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        holder.execute("COMMIT")
        holder.close()
        assert s.summary("gave-up") is None
        s.save(make_result("gave-up", n_steps=2, entries=1))  # the connection is usable again
        assert s.count() == 2
    finally:
        s.close()


def test_sqlite_errors_leave_as_store_errors_and_roll_back(tmp_path: Path) -> None:
    pool = ConnectionPool(tmp_path / "x.db", busy_timeout_ms=100, size=2, attempts=3)
    pool.run(lambda conn: conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)"))

    def insert_twice(conn: sqlite3.Connection) -> None:
        with write_transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (1)")  # a constraint error: not retried

    with pytest.raises(StoreError, match="UNIQUE") as caught:
        pool.run(insert_twice)
    assert isinstance(caught.value, ReasonKitError)
    assert pool.run(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    assert all(not conn.in_transaction for conn in pool.idle)
    pool.close()


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database file should be
    with pytest.raises(StoreError, match="cannot be"):
        SqliteRunStore(tmp_path / "dir.db")


def test_is_busy() -> None:
    assert is_busy(sqlite3.OperationalError("database is locked"))
    assert is_busy(sqlite3.OperationalError("database table is locked: runs"))
    assert not is_busy(sqlite3.OperationalError("no such table: runs"))
    assert not is_busy(sqlite3.IntegrityError("database is locked"))  # not an OperationalError
