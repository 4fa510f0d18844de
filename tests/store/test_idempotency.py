"""The idempotency-key table in the run store's database, on both back ends (the SQLite file and a
real PostgreSQL server): claims, repeats, conflicts, expiry, takeover of keys whose run was
cancelled, interrupted or never recorded, and one winner among concurrent claims from threads and
from separate processes."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reasonkit.engine.result import RunResult
from reasonkit.errors import IdempotencyConflict, InputError, ReasonKitError
from reasonkit.store import SqliteRunStore
from reasonkit.store import idempotency as idem
from reasonkit.store.idempotency import IdempotencyKeys

DAY = 86400.0


def store_run(store: SqliteRunStore, run_id: str, status: str) -> None:
    store.save(RunResult(run_id=run_id, kind="protocol", name="tiny", status=status, started_at=1.0))  # type: ignore[arg-type]


@pytest.fixture
def keys(any_store) -> IdempotencyKeys:
    return any_store.idempotency_keys()


def test_first_claim_runs_a_repeat_gets_the_first_run(keys: IdempotencyKeys) -> None:
    assert keys.claim("token:a", "k", "fp1", "run-1", DAY) == idem.Claim("run-1", True)
    assert keys.claim("token:a", "k", "fp1", "run-2", DAY) == idem.Claim("run-1", False)
    # another client's identical key is its own
    assert keys.claim("token:b", "k", "fp1", "run-3", DAY) == idem.Claim("run-3", True)
    assert keys.count() == 2


def test_other_arguments_conflict(keys: IdempotencyKeys) -> None:
    keys.claim("c", "k", "fp1", "run-1", DAY)
    with pytest.raises(IdempotencyConflict) as caught:
        keys.claim("c", "k", "fp2", "run-2", DAY)
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ReasonKitError)
    assert "other arguments" in str(caught.value)


def test_expired_keys_are_claimed_anew_and_deleted(keys: IdempotencyKeys) -> None:
    keys.claim("c", "old", "fp1", "run-1", 0.0)  # expires at once
    keys.claim("c", "other", "fp1", "run-2", 0.0)
    assert keys.claim("c", "old", "fp-any", "run-3", DAY) == idem.Claim("run-3", True)
    assert keys.count() == 1  # the other expired row was deleted on the way


@pytest.mark.parametrize("status", ["cancelled", "interrupted"])
def test_a_key_whose_run_ended_without_result_is_taken_over(any_store, keys, status: str) -> None:
    keys.claim("c", "k", "fp", "run-1", DAY)
    store_run(any_store, "run-1", status)
    assert keys.claim("c", "k", "fp", "run-2", DAY) == idem.Claim("run-2", True)


@pytest.mark.parametrize("status", ["running", "complete", "incomplete", "failed"])
def test_a_key_whose_run_is_running_or_finished_is_kept(any_store, keys, status: str) -> None:
    keys.claim("c", "k", "fp", "run-1", DAY)
    store_run(any_store, "run-1", status)
    assert keys.claim("c", "k", "fp", "run-2", DAY) == idem.Claim("run-1", False)


def test_a_key_whose_run_never_appeared_is_an_orphan(keys, monkeypatch: pytest.MonkeyPatch) -> None:
    keys.claim("c", "k", "fp", "run-1", DAY)
    assert keys.claim("c", "k", "fp", "run-2", DAY).new is False  # within ORPHAN_SECS: still pending
    monkeypatch.setattr(idem, "ORPHAN_SECS", -1.0)
    assert keys.claim("c", "k", "fp", "run-3", DAY) == idem.Claim("run-3", True)


def test_release_frees_the_key(keys: IdempotencyKeys) -> None:
    keys.claim("c", "k", "fp", "run-1", DAY)
    keys.release("c", "k", "run-2")  # not its run: kept
    assert keys.count() == 1
    keys.release("c", "k", "run-1")
    assert keys.count() == 0


def test_concurrent_claims_from_threads_have_one_winner(any_store) -> None:
    claims: list[idem.Claim] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        keys = any_store.idempotency_keys()  # SQLite: a connection pool each, like workers
        barrier.wait()
        claims.append(keys.claim("c", "k", "fp", f"run-{i}", DAY))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(c.new for c in claims) == 1
    assert len({c.run_id for c in claims}) == 1


def _claim_in_process(where: str, i: int) -> tuple[str, bool]:
    if "://" in where:
        from reasonkit.store.postgres import PostgresRunStore

        store: Any = PostgresRunStore(where, migrate=False)
    else:
        store = SqliteRunStore(where)
    try:
        claim = store.idempotency_keys().claim("c", "shared", "fp", f"proc-{i}", DAY)
    finally:
        store.close()
    return claim.run_id, claim.new


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_claims_from_processes_have_one_winner(backend: str, tmp_path: Path, request) -> None:
    if backend == "sqlite":
        where = str(tmp_path / "runs.db")
        SqliteRunStore(where).close()
    else:
        from reasonkit.store.postgres import PostgresRunStore

        where = request.getfixturevalue("pg_url")
        PostgresRunStore(where).close()  # migrated once, before the workers race
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        results = list(pool.map(_claim_in_process, [where] * 6, range(6)))
    assert sum(new for _, new in results) == 1
    assert len({run_id for run_id, _ in results}) == 1


def test_a_full_disk_is_named_not_hidden_behind_no_such_table(tmp_path: Path, monkeypatch) -> None:
    """A database that cannot grow (SQLite's max_page_count: what a full disk looks like to SQLite)
    used to end in "no such table: idempotency_keys"; the error now says what happened."""
    from reasonkit.errors import StoreError
    from reasonkit.store.connections import ConnectionPool

    path = tmp_path / "runs.db"
    SqliteRunStore(path).close()
    connect = ConnectionPool._connect

    def full(self: ConnectionPool) -> Any:
        conn = connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(ConnectionPool, "_connect", full)
    keys = IdempotencyKeys.in_file(path)
    try:
        with pytest.raises(StoreError) as info:
            keys.claim("scope", "key", "fp", "run-1", ttl_secs=60)
    finally:
        keys.close()
    assert "full" in str(info.value) and "no such table" not in str(info.value)
