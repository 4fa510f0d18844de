"""The run store in PostgreSQL: one database that every replica of the server reads and writes.

- The same base class as the SQLite store (`reasonkit.store.base.StoreBackend`: lifecycle, row
  mapping, retention, reads); the same table (`reasonkit.store.table`), migrated by
  `reasonkit.store.postgres_schema` when the store opens (one replica migrates, the others wait) or
  by `rk db migrate`.
- psycopg 3 with a psycopg-pool connection pool. The store's methods are synchronous like the SQLite
  store's: the run service calls them in worker threads, so progress never waits for the database.
- Replicas: a running run holds a lease (`lease_until`, database clock). A heartbeat thread renews the
  leases of this replica's running runs every `lease_secs / 3`; any replica marks a running run whose
  lease has expired `interrupted` (its replica died or lost the database). Reads do the same, at most
  once per heartbeat interval, so `run_result` and `rk runs` on another replica tell the truth.
- Progress saves (a running run) commit with `synchronous_commit = off`, the durability of SQLite's
  `synchronous=NORMAL`; the final save of a run is a normal, durable commit.
- Outages (reasonkit.store.hygiene, as for SQLite): write failures are counted (`health`: /health
  says `degraded`, `reasonkit_store_write_errors_total`, a rate-limited warning), a final save that
  failed is kept in memory (reads answer from it) and retried by the maintenance thread, which also
  applies retention. Connections give up after `CONNECT_TIMEOUT_S`, so a call made while the database
  is down is answered in seconds, not after the driver's default waits.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from reasonkit.errors import StoreError
from reasonkit.store import postgres_schema, schema
from reasonkit.store.base import StoreBackend, redact_url
from reasonkit.store.hygiene import ErrorMetrics, FinalSaves, StoreHealth
from reasonkit.store.idempotency import IdempotencyKeys
from reasonkit.store.liveness import Heartbeat, replica_id
from reasonkit.store.table import POSTGRES

log = logging.getLogger("reasonkit.store")

_T = TypeVar("_T")
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
POOL_SIZE = 4
#: Seconds to wait for a connection: a database on the same network answers in milliseconds, and
#: each write of a run waits this long while the database is down.
CONNECT_TIMEOUT_S = 2.0
#: While writes fail (the database is down), a connection is waited for only this long: each call
#: then loses at most about `CONNECT_TIMEOUT_S` once, not on each of its writes.
FAILING_WAIT_S = 0.25


class PostgresRunStore(StoreBackend):
    """Runs and their traces in a PostgreSQL database shared by replicas. Safe to share between
    threads."""

    dialect = POSTGRES
    path: str
    health: StoreHealth  # write failures counted here, for /health and rate-limited warnings

    def __init__(
        self,
        url: str,
        *,
        lease_secs: float = 30.0,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        migrate: bool = True,
        metrics: ErrorMetrics | None = None,
    ):
        super().__init__(redact_url(url))
        self.health = StoreHealth(self.path, metrics)
        self._finals = FinalSaves(self.save_trace, self.path)
        self.url = url
        self.lease_secs = float(lease_secs)
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.owner_id = replica_id()
        #: False: saves of a running run commit without waiting for the WAL flush (see _upsert)
        self.durable_progress = False
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._heartbeat: Heartbeat | None = None
        self._last_reap = 0.0  # time.monotonic() of the last reap made by a read
        self.schema_version = self.migrate() if migrate else self._version()

    # ----------------------------------------------------------------- connections
    def _connect_once(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
            )
        except psycopg.Error as exc:
            raise StoreError(f"the run database {self.path} cannot be reached: {self._say(exc)}") from None

    def _say(self, exc: BaseException) -> str:
        """The first line of a database error, never with the password in it."""
        text = _first_line(exc)
        secret = _password(self.url)
        return redact_url(text.replace(secret, "***") if secret else text)  # the URL may be in it

    def migrate(self) -> int:
        """Apply the pending migrations (see reasonkit.store.postgres_schema); returns the version."""
        with self._connect_once() as conn:
            try:
                before, after = postgres_schema.migrate(conn, self.path)
            except psycopg.Error as exc:
                raise StoreError(f"migrating the run database {self.path} failed: {self._say(exc)}") from None
        if before != after:
            log.info("run database %s migrated from schema %d to %d", self.path, before, after)
        return after

    def _version(self) -> int:
        with self._connect_once() as conn:
            return postgres_schema.current_version(conn)

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                pool: ConnectionPool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=max(1, self.pool_size),
                    kwargs={
                        "autocommit": True,
                        "row_factory": dict_row,
                        "connect_timeout": max(1, int(self.connect_timeout)),
                    },
                    timeout=self.connect_timeout,
                    open=False,
                    name="reasonkit-store",
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _run(self, operation: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run `operation` with a pooled connection; every database error leaves as a StoreError."""
        wait = FAILING_WAIT_S if self.health.failing else None  # None: the pool's own timeout
        try:
            with self._get_pool().connection(timeout=wait) as conn:
                return operation(conn)
        except psycopg.Error as exc:
            raise StoreError(f"run store {self.path}: {self._say(exc)}") from exc

    def close(self) -> None:
        """Stop the maintenance thread and the heartbeat and close the connections. The store reopens
        lazily if used again."""
        if self.maintenance is not None:
            self.maintenance.stop()
            self.maintenance = None
        with self._lock:
            heartbeat, self._heartbeat = self._heartbeat, None
            pool, self._pool = self._pool, None
        if heartbeat is not None:
            heartbeat.stop()
        if pool is not None:
            pool.close()

    def _begin(self, conn: psycopg.Connection[Any]) -> AbstractContextManager[Any]:
        return conn.transaction()

    def idempotency_keys(self) -> IdempotencyKeys:
        """The keys in this database, through the store's pool (closed with the store)."""
        return IdempotencyKeys(self.path, self._run, self._begin, POSTGRES)

    # ----------------------------------------------------------------- writes
    def owner_columns(self) -> dict[str, Any]:
        """The owner's process, and this replica's id (whose heartbeat renews the run's lease)."""
        return {**super().owner_columns(), "owner_id": self.owner_id}

    def _upsert(self, row: dict[str, Any], update: builtins.list[str], name: str) -> None:
        sql = schema.upsert_sql(self.dialect, list(row), update, {"lease_until": f"{_NOW} + %s"})
        values = [*row.values(), self.lease_secs]
        running = row["status"] == "running"

        def operation(conn: psycopg.Connection[Any]) -> None:
            if running and not self.durable_progress:
                # A progress snapshot: like SQLite's synchronous=NORMAL, a database crash may lose
                # the last few, never corrupt; the run's final save is a durable commit.
                conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(sql, values)

        self._transaction(name, operation)
        if running:
            self._ensure_heartbeat()

    # ----------------------------------------------------------------- leases
    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is None or not self._heartbeat.alive:
                self._heartbeat = Heartbeat(self.heartbeat, self.lease_secs / 3).start()

    def heartbeat(self) -> int:
        """Renew the leases of this replica's running runs, then mark expired ones (of any replica)
        interrupted. Returns how many leases were renewed."""
        renewed = self._run(
            lambda conn: (
                conn.execute(
                    f"UPDATE runs SET lease_until = {_NOW} + %s WHERE owner_id = %s AND status = 'running'",
                    (self.lease_secs, self.owner_id),
                ).rowcount
            )
        )
        self.mark_interrupted()
        return renewed

    def mark_interrupted(self) -> int:
        """Mark `running` runs whose lease has expired `interrupted` (their trace too). A replica that
        is alive renews its leases, so only runs of a replica that died (or lost the database for
        longer than the lease) are marked."""

        def operation(conn: psycopg.Connection[Any]) -> int:
            rows = conn.execute(
                f"SELECT run_id, owner_host, owner_pid, trace, {_NOW} AS now FROM runs "
                f"WHERE status = 'running' AND (lease_until IS NULL OR lease_until < {_NOW}) "
                "FOR UPDATE SKIP LOCKED"
            ).fetchall()
            for row in cast(builtins.list[dict[str, Any]], rows):
                reason = (
                    f"interrupted: the replica that ran it ({row['owner_host']} pid {row['owner_pid']}) "
                    f"stopped renewing its lease ({self.lease_secs:g}s) before the run finished"
                )
                self._interrupt(conn, row["run_id"], row["trace"], reason, row["now"])
            return len(rows)

        marked = self._transaction("mark_interrupted", operation)
        if marked:
            log.warning(
                "run store: %d run(s) whose replica stopped renewing its lease marked interrupted", marked
            )
        return marked

    def _before_read(self) -> None:
        """Before a read: mark expired leases interrupted, at most once per heartbeat interval."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_reap < self.lease_secs / 3:
                return
            self._last_reap = now
        try:
            self.mark_interrupted()
        except StoreError as exc:  # the read reports a broken database itself
            log.debug("run store: checking leases failed: %s", exc)

    def lease(self, run_id: str) -> tuple[str, float | None] | None:
        """(owner replica id, lease end in seconds since the epoch) of a run, or None."""
        row = self._one("SELECT owner_id, lease_until FROM runs WHERE run_id = ?", (run_id,))
        return None if row is None else (row["owner_id"], row["lease_until"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
