"""The run store in PostgreSQL: one database that every replica of the server reads and writes.

- Same interface as the SQLite store (`reasonkit.store.base.StoreBackend`), same trace <-> row mapping
  (`reasonkit.store.schema`); the schema and its migrations are in `reasonkit.store.postgres_schema`
  and are applied when the store opens (one replica migrates, the others wait) or by `rk db migrate`.
- psycopg 3 with a psycopg-pool connection pool. The store's methods are synchronous like the SQLite
  store's: the run service calls them in worker threads, so progress never waits for the database.
- Replicas: a running run holds a lease (`lease_until`, database clock). A heartbeat thread renews the
  leases of this replica's running runs every `lease_secs / 3`; any replica marks a running run whose
  lease has expired `interrupted` (its replica died or lost the database). Reads do the same, at most
  once per heartbeat interval, so `run_result` and `rk runs` on another replica tell the truth.
- Progress saves (a running run) commit with `synchronous_commit = off`, the durability of SQLite's
  `synchronous=NORMAL`; the final save of a run is a normal, durable commit.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from reasonkit.errors import InputError, StoreError
from reasonkit.observability.redaction import redact_value
from reasonkit.store import postgres_schema, schema
from reasonkit.store.base import redact_url
from reasonkit.store.liveness import Heartbeat, current_owner, replica_id

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult

log = logging.getLogger("reasonkit.store")

_T = TypeVar("_T")
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
POOL_SIZE = 4
CONNECT_TIMEOUT_S = 10.0


class PostgresRunStore:
    """Runs and their traces in a PostgreSQL database shared by replicas. Safe to share between
    threads."""

    redact_pii: bool = False  # `[privacy] redact_pii`: personal data replaced in stored traces

    def __init__(
        self,
        url: str,
        *,
        lease_secs: float = 30.0,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        migrate: bool = True,
    ):
        self.url = url
        self.path = redact_url(url)
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
        self._prune_lock = threading.Lock()
        self._last_prune: float | None = None
        self.schema_version = self.migrate() if migrate else self._version()

    def __repr__(self) -> str:
        return f"PostgresRunStore({self.path!r})"

    def __enter__(self) -> PostgresRunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                    kwargs={"autocommit": True, "row_factory": dict_row},
                    timeout=self.connect_timeout,
                    open=False,
                    name="reasonkit-store",
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _run(self, operation: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run `operation` with a pooled connection; every database error leaves as a StoreError."""
        try:
            with self._get_pool().connection() as conn:
                return operation(conn)
        except psycopg.Error as exc:
            raise StoreError(f"run store {self.path}: {self._say(exc)}") from exc

    def close(self) -> None:
        """Stop the heartbeat and close the connections. The store reopens lazily if used again."""
        with self._lock:
            heartbeat, self._heartbeat = self._heartbeat, None
            pool, self._pool = self._pool, None
        if heartbeat is not None:
            heartbeat.stop()
        if pool is not None:
            pool.close()

    # ----------------------------------------------------------------- writes
    def start(self, result: RunResult) -> None:
        self.start_trace(result.trace())

    def save(self, result: RunResult) -> None:
        self.save_trace(result.trace())

    def start_trace(self, trace: dict[str, Any]) -> None:
        """Record the run as `running`, owned by this replica, with a fresh lease."""
        row = self._row(trace)
        row["status"] = "running"
        self._upsert(row, [c for c in row if c != "run_id"])

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or update the run; a stored run keeps its owner and start time."""
        row = self._row(trace)
        self._upsert(row, list(schema.SAVE_FIELDS))

    def _row(self, trace: dict[str, Any]) -> dict[str, Any]:
        trace = redact_value(trace) if self.redact_pii else trace
        row = schema.row_from_trace(trace, time.time())
        owner = current_owner()
        row.update(
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_start=owner.start,
            owner_id=self.owner_id,
            trace=json.dumps(trace, ensure_ascii=False),
        )
        return row

    def _upsert(self, row: dict[str, Any], update: builtins.list[str]) -> None:
        columns = list(row)
        sql = (
            f"INSERT INTO runs ({', '.join(columns)}, lease_until) "
            f"VALUES ({', '.join(['%s'] * len(columns))}, {_NOW} + %s) "
            f"ON CONFLICT (run_id) DO UPDATE SET "
            f"{', '.join(f'{c} = EXCLUDED.{c}' for c in update)}, lease_until = EXCLUDED.lease_until"
        )
        values = [*row.values(), self.lease_secs]
        running = row["status"] == "running"

        def operation(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                if running and not self.durable_progress:
                    # A progress snapshot: like SQLite's synchronous=NORMAL, a database crash may lose
                    # the last few, never corrupt; the run's final save is a durable commit.
                    conn.execute("SET LOCAL synchronous_commit = off")
                conn.execute(sql, values)

        self._run(operation)
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
            marked = 0
            with conn.transaction():
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
                    conn.execute(
                        "UPDATE runs SET status = 'interrupted', complete = 0, "
                        "stop_reason = COALESCE(stop_reason, %s), updated_at = %s, trace = %s "
                        "WHERE run_id = %s",
                        (reason, row["now"], schema.interrupted_trace(row["trace"], reason), row["run_id"]),
                    )
                    marked += 1
            return marked

        marked = self._run(operation)
        if marked:
            log.warning(
                "run store: %d run(s) whose replica stopped renewing its lease marked interrupted", marked
            )
        return marked

    def _reap_if_due(self) -> None:
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

    # ----------------------------------------------------------------- retention
    def prune(self, max_age_days: float | None = None, max_count: int | None = None) -> int:
        """Delete finished runs started more than `max_age_days` ago and/or all but the newest
        `max_count` finished runs. Running runs are never deleted."""
        if max_age_days is None and max_count is None:
            return 0
        if max_age_days is not None and max_age_days < 0:
            raise InputError("max_age_days must be >= 0")
        if max_count is not None and max_count < 0:
            raise InputError("max_count must be >= 0")

        def operation(conn: psycopg.Connection[Any]) -> int:
            deleted = 0
            with conn.transaction():
                if max_age_days is not None:
                    cutoff = time.time() - max_age_days * 86400
                    deleted += conn.execute(
                        "DELETE FROM runs WHERE status != 'running' AND started_at < %s", (cutoff,)
                    ).rowcount
                if max_count is not None:
                    deleted += conn.execute(
                        "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs "
                        "WHERE status != 'running' ORDER BY started_at DESC, run_id DESC OFFSET %s)",
                        (max_count,),
                    ).rowcount
            return deleted

        return self._run(operation)

    def prune_if_due(self, max_age_days: float | None, max_count: int | None, every_s: float = 300.0) -> int:
        """`prune()`, unless this store pruned less than `every_s` seconds ago (then 0, no I/O)."""
        if max_age_days is None and max_count is None:
            return 0
        with self._prune_lock:
            now = time.monotonic()
            if self._last_prune is not None and now - self._last_prune < every_s:
                return 0
            self._last_prune = now
        return self.prune(max_age_days, max_count)

    # ----------------------------------------------------------------- reads
    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self._run(lambda conn: conn.execute(sql, args).fetchone()))

    def _all(self, sql: str, args: builtins.list[Any] | tuple[Any, ...]) -> builtins.list[dict[str, Any]]:
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return cast("builtins.list[dict[str, Any]]", rows)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The full trace of a run, or None."""
        self._reap_if_due()
        row = self._one("SELECT trace FROM runs WHERE run_id = %s", (run_id,))
        if row is None or row["trace"] is None:
            return None
        return cast("dict[str, Any]", json.loads(row["trace"]))

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The columns of a run (no trace), or None."""
        self._reap_if_due()
        row = self._one(f"SELECT {', '.join(schema.ROW_FIELDS)} FROM runs WHERE run_id = %s", (run_id,))
        return None if row is None else schema.summary_from_row(cast(Any, row))

    def lease(self, run_id: str) -> tuple[str, float | None] | None:
        """(owner replica id, lease end in seconds since the epoch) of a run, or None."""
        row = self._one("SELECT owner_id, lease_until FROM runs WHERE run_id = %s", (run_id,))
        return None if row is None else (row["owner_id"], row["lease_until"])

    def list(
        self, limit: int = 50, status: str | None = None, kind_or_name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Runs, newest first (`limit` <= 0: all), optionally of one status and/or kind or name."""
        self._reap_if_due()
        sql, args = schema.list_query(limit, status, kind_or_name, "%s", None)
        return [schema.listing_from_row(cast(Any, row)) for row in self._all(sql, args)]

    def resolve(self, prefix: str, limit: int = 10) -> builtins.list[str]:
        """Run ids equal to `prefix`, else those starting with it (at most `limit`)."""
        if not prefix:
            return []
        exact = self._one("SELECT run_id FROM runs WHERE run_id = %s", (prefix,))
        if exact is not None:
            return [exact["run_id"]]
        rows = self._all(
            "SELECT run_id FROM runs WHERE left(run_id, %s) = %s ORDER BY started_at DESC LIMIT %s",
            (len(prefix), prefix, limit),
        )
        return [row["run_id"] for row in rows]

    def count(self) -> int:
        row = self._one("SELECT count(*) AS n FROM runs", ())
        return int(row["n"]) if row else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
