"""Idempotency keys of MCP tool calls, kept in the run store's database (the SQLite file, or the
PostgreSQL database replicas share) so that every process and replica using that store sees the same
keys.

    keys = store.idempotency_keys()
    claim = keys.claim(scope, key, fingerprint, run_id, ttl_secs)
    claim.new      True: this call owns the key and runs `claim.run_id`
                   False: a repeat; `claim.run_id` is the first call's run (finished or running)

One row per (scope, key): the scope is the client (a hash of its bearer token, or its address), so
two clients never share a key. The row holds the fingerprint of the call (tool, target and checked
inputs) and the run it started; the same key with another fingerprint raises `IdempotencyConflict`. A
row expires `ttl_secs` after it was written. A key whose run ended `cancelled` or `interrupted` (the
client went away, the process died), or whose run was never recorded within `ORPHAN_SECS`, is taken
over by the next call: a retry then runs again instead of returning nothing useful.

Every claim is one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `INSERT ... ON CONFLICT DO
NOTHING` then `SELECT ... FOR UPDATE`), so concurrent duplicates are serialised: exactly one of them
gets `new=True`.

A key lives no longer than its run: retention deletes the keys of the runs it prunes in the same
transaction (`forget_runs_sql`), so a repeat of a pruned run's key starts a new run at once instead
of waiting for a run that will never appear.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonkit.errors import IdempotencyConflict, StoreError
from reasonkit.store.connections import BUSY_TIMEOUT_MS, ConnectionPool, write_transaction
from reasonkit.store.table import SQLITE, Dialect

#: A key whose run has not appeared in the store this long after the claim is given up on.
ORPHAN_SECS = 60.0
#: Run statuses that release a key: the next call with it runs again.
RELEASING = ("cancelled", "interrupted")

Runner = Callable[[Callable[[Any], Any]], Any]
Transaction = Callable[[Any], AbstractContextManager[Any]]

_TABLE = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  {real} NOT NULL,
    expires_at  {real} NOT NULL,
    PRIMARY KEY (scope, key)
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at)"


def table_ddl(dialect: Dialect) -> list[str]:
    """The statements that create the key table (if it is not there yet)."""
    return [_TABLE.format(real=dialect.types["real"]), _INDEX]


def forget_runs_sql(delete_runs: str) -> str:
    """For a `DELETE FROM runs WHERE <condition>`: the DELETE of the keys of those runs (run it first,
    in the same transaction, with the same arguments)."""
    prefix = "DELETE FROM runs WHERE "
    if not delete_runs.startswith(prefix):
        raise ValueError(f"not a DELETE of runs: {delete_runs[:60]!r}")
    condition = delete_runs[len(prefix) :]
    return f"DELETE FROM idempotency_keys WHERE run_id IN (SELECT run_id FROM runs WHERE {condition})"


@dataclass(frozen=True)
class Claim:
    run_id: str
    new: bool


@dataclass
class IdempotencyKeys:
    """The `idempotency_keys` table (created on first use) next to the `runs` table of a store.
    Thread- and process-safe; every method blocks on I/O (call it in a worker thread from async
    code). Get it from the store (`store.idempotency_keys()`), or `IdempotencyKeys.in_file(path)`
    for a SQLite file."""

    path: Path | str
    #: `run(operation)` runs `operation(connection)`; every database error leaves as a StoreError
    run: Runner
    #: `begin(connection)`: a write transaction on it
    begin: Transaction
    dialect: Dialect
    #: closes the connections the keys opened for themselves (none: they use the store's)
    on_close: Callable[[], None] = lambda: None
    _ready: bool = field(default=False, init=False)

    @classmethod
    def in_file(cls, path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> IdempotencyKeys:
        """The keys in a SQLite file, through a small connection pool of their own."""
        pool = ConnectionPool(Path(path), busy_timeout_ms, size=2, attempts=8)
        return cls(Path(path), pool.run, write_transaction, SQLITE, pool.close)

    def close(self) -> None:
        self.on_close()

    def _sql(self, text: str) -> str:
        return self.dialect.sql(text)

    def _ensure_table(self) -> None:
        if self._ready:
            return

        def operation(conn: Any) -> None:
            with self.begin(conn):
                for statement in table_ddl(self.dialect):
                    conn.execute(statement)

        try:
            self.run(operation)
        except StoreError as exc:  # another process created it at the same moment: check it is there
            try:
                self.run(lambda conn: conn.execute("SELECT count(*) FROM idempotency_keys").fetchone())
            except StoreError:
                # Not there: the create failed for its own reason (a full disk, a read-only file),
                # which is the error to report, not the "no such table" that follows from it.
                raise exc from exc.__cause__
        self._ready = True

    def claim(self, scope: str, key: str, fingerprint: str, run_id: str, ttl_secs: float) -> Claim:
        """Claim `key` for the run `run_id`, or find the run that holds it (see the module docstring).
        Raises `IdempotencyConflict` when the key holds a call with another fingerprint."""
        self._ensure_table()
        sql = self._sql

        def operation(conn: Any) -> Claim:
            now = time.time()
            with self.begin(conn):
                conn.execute(sql("DELETE FROM idempotency_keys WHERE expires_at <= ?"), (now,))
                inserted = conn.execute(
                    sql(
                        "INSERT INTO idempotency_keys "
                        "(scope, key, fingerprint, run_id, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING"
                    ),
                    (scope, key, fingerprint, run_id, now, now + ttl_secs),
                ).rowcount
                if inserted == 1:
                    return Claim(run_id, True)
                row = conn.execute(
                    sql(
                        "SELECT fingerprint, run_id, created_at FROM idempotency_keys "
                        "WHERE scope = ? AND key = ?" + self.dialect.lock_rows
                    ),
                    (scope, key),
                ).fetchone()
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(
                        f"idempotency_key {key[:60]!r} was already used for a call with other arguments "
                        "(another tool, profile or inputs); use a new key for a new request"
                    )
                if not self._released(conn, row["run_id"], row["created_at"], now):
                    return Claim(row["run_id"], False)
                conn.execute(
                    sql(
                        "UPDATE idempotency_keys SET run_id = ?, created_at = ?, expires_at = ? "
                        "WHERE scope = ? AND key = ?"
                    ),
                    (run_id, now, now + ttl_secs, scope, key),
                )
                return Claim(run_id, True)

        claim: Claim = self.run(operation)
        return claim

    def _released(self, conn: Any, run_id: str, created_at: float, now: float) -> bool:
        try:
            run = conn.execute(self._sql("SELECT status FROM runs WHERE run_id = ?"), (run_id,)).fetchone()
        except sqlite3.OperationalError:  # a SQLite file without a runs table: never recorded
            run = None
        if run is None:
            return now - created_at > ORPHAN_SECS
        return run["status"] in RELEASING

    def release(self, scope: str, key: str, run_id: str) -> None:
        """Give the key up (the run it was claimed for could not start)."""
        self._ensure_table()

        def operation(conn: Any) -> None:
            with self.begin(conn):
                conn.execute(
                    self._sql("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND run_id = ?"),
                    (scope, key, run_id),
                )

        try:
            self.run(operation)
        except StoreError:  # the key then expires with its TTL or is taken over as an orphan
            pass

    def count(self) -> int:
        """Rows in the table, expired ones included (for tests)."""
        self._ensure_table()
        row = self.run(lambda conn: conn.execute("SELECT count(*) AS n FROM idempotency_keys").fetchone())
        return int(row["n"])
