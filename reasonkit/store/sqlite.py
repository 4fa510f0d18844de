"""The run store: every run (CLI and MCP) with its full trace, in one embedded SQLite database.

- What both back ends share (lifecycle, row mapping, retention, reads): `reasonkit.store.base`; the
  table: `reasonkit.store.table`. Connections, write transactions and retries while another process
  holds the lock: `reasonkit.store.connections`. Owners and their liveness:
  `reasonkit.store.liveness`. Saving a run while it runs: `reasonkit.store.recorder`.
- WAL journal, so readers never block writers and several processes can share the file.
- Crash recovery: `start_trace()` records the owner (hostname, pid, process start time). A row still
  `running` whose owner process is gone (or whose pid now belongs to another process) is marked
  `interrupted` by `mark_interrupted()`, which the server calls at start-up.
- Retention: `prune()` deletes old finished runs and gives the freed pages back to the file system.
- Upkeep (reasonkit.store.hygiene): write failures counted (`health`), failed final saves kept and
  retried, and, while a server runs, a maintenance thread for retention, retries and WAL checkpoints.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from reasonkit.errors import StoreError
from reasonkit.store import schema
from reasonkit.store.base import StoreBackend
from reasonkit.store.connections import (
    BUSY_TIMEOUT_MS,
    ConnectionPool,
    GroupCommit,
    is_busy,
    write_transaction,
)
from reasonkit.store.hygiene import (
    ErrorMetrics,
    FinalSaves,
    StoreHealth,
    private_dir,
    private_file,
)
from reasonkit.store.idempotency import IdempotencyKeys
from reasonkit.store.liveness import Owner, owner_gone
from reasonkit.store.table import SQLITE, migrations

log = logging.getLogger("reasonkit.store")

_T = TypeVar("_T")
#: Version -> the statements that bring a file from version-1 to version (`PRAGMA user_version`).
MIGRATIONS = migrations(SQLITE)
SCHEMA_VERSION = max(MIGRATIONS)
#: Defaults of a new store's `write_attempts` and `pool_size`.
WRITE_ATTEMPTS = 8
POOL_SIZE = 4


class _PoolSetting:
    """A store attribute that lives on its connection pool (read and set through the store)."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, store: SqliteRunStore, owner: type | None = None) -> int:
        return int(getattr(store._pool, self.name))

    def __set__(self, store: SqliteRunStore, value: int) -> None:
        setattr(store._pool, self.name, value)


class SqliteRunStore(StoreBackend):
    """Runs and their traces in one SQLite file. Safe to share between threads and processes."""

    dialect = SQLITE
    path: Path
    health: StoreHealth  # write failures counted here, for /health and rate-limited warnings
    #: Rows owned by another host (whose processes we cannot see) are marked interrupted only when
    #: they have not been updated for this long.
    foreign_stale_secs: float = 6 * 3600
    #: Attempts for an operation that keeps hitting "database is locked" after busy_timeout.
    write_attempts = _PoolSetting("attempts")
    #: Idle connections kept open (see reasonkit.store.connections).
    pool_size = _PoolSetting("size")

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        metrics: ErrorMetrics | None = None,
    ):
        super().__init__(Path(path).expanduser())
        self.busy_timeout_ms = busy_timeout_ms
        private_dir(self.path.parent)  # 0700 folder, 0600 files (reasonkit.store.hygiene)
        private_file(self.path)
        self.health = StoreHealth(str(self.path), metrics)
        self._pool = ConnectionPool(self.path, busy_timeout_ms, POOL_SIZE, WRITE_ATTEMPTS)
        self._group = GroupCommit(self._pool)  # run rows written by concurrent threads share transactions
        self._finals = FinalSaves(self.save_trace, str(self.path))
        self._init_schema()

    @classmethod
    def for_settings(cls, settings: Any, metrics: ErrorMetrics | None = None) -> SqliteRunStore:
        store = cls(Path(settings.data_dir()) / "runs.db", metrics=metrics)
        store.redact_pii = settings.privacy.redact_pii
        return store

    def close(self) -> None:
        """Stop the maintenance thread, close the open connections (one still in use is closed when
        its operation ends). The store reopens lazily if it is used again."""
        if self.maintenance is not None:
            self.maintenance.stop()
            self.maintenance = None
        self._pool.close()

    def _init_schema(self) -> None:
        def init(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                # A new file: let prune() give freed pages back to the file system. (Must come before
                # the switch to WAL and before the first table.)
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower()
                if mode != "wal":
                    log.warning("run store %s: WAL mode unavailable (journal_mode=%s)", self.path, mode)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer ReasonKit (schema {version}, this version "
                    f"knows {SCHEMA_VERSION}); upgrade ReasonKit or use another --data-dir"
                )
            with write_transaction(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[target]:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        try:
            self._pool.run(init)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, sqlite3.DatabaseError) and not is_busy(cause):
                raise StoreError(
                    f"{self.path} cannot be used as a ReasonKit run database: {cause}"
                ) from cause
            raise

    # ----------------------------------------------------------------- the base class's primitives
    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        return self._pool.run(operation)

    def _begin(self, conn: sqlite3.Connection) -> AbstractContextManager[Any]:
        return write_transaction(conn)

    def _upsert(self, row: dict[str, Any], update: list[str], name: str) -> None:
        """One run row, in a transaction shared with this process's concurrent writes (GroupCommit)."""
        sql = schema.upsert_sql(self.dialect, list(row), update)
        self._write(name, lambda: self._group.write(sql, list(row.values())))

    def idempotency_keys(self) -> IdempotencyKeys:
        """The keys in this file, through connections of their own (reasonkit.store.idempotency)."""
        return IdempotencyKeys.in_file(self.path)

    # ----------------------------------------------------------------- crash recovery, retention
    def mark_interrupted(self) -> int:
        """Mark `running` rows whose owning process is gone as `interrupted` (their trace too).
        Rows owned by a live process on this host are left alone: other workers share the file.
        Rows from another host are marked only when not updated for `foreign_stale_secs`."""

        def operation(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT run_id, owner_host, owner_pid, owner_start, updated_at FROM runs "
                "WHERE status = 'running'"
            ).fetchall()
            now = time.time()
            dead = [
                row["run_id"]
                for row in rows
                if owner_gone(
                    Owner(row["owner_host"], row["owner_pid"] or 0, row["owner_start"]),
                    row["updated_at"] or 0,
                    now,
                    self.foreign_stale_secs,
                )
            ]
            if not dead:
                return 0
            marked = 0
            with write_transaction(conn):  # only when there is something to mark: no write lock taken
                for run_id in dead:
                    row = conn.execute(
                        "SELECT trace, owner_host, owner_pid FROM runs "
                        "WHERE run_id = ? AND status = 'running'",
                        (run_id,),
                    ).fetchone()
                    if row is None:  # finished or marked meanwhile
                        continue
                    reason = (
                        f"interrupted: the process that ran it ({row['owner_host']} pid "
                        f"{row['owner_pid']}) ended before the run finished"
                    )
                    self._interrupt(conn, run_id, row["trace"], reason, now)
                    marked += 1
            return marked

        marked = self._write("mark_interrupted", lambda: self._pool.run(operation))
        if marked:
            log.warning(
                "run store: %d run(s) left running by a process that ended were marked interrupted",
                marked,
            )
        return marked

    def prune(self, max_age_days: float | None = None, max_count: int | None = None) -> int:
        """`StoreBackend.prune`, then the freed pages go back to the file system."""
        deleted = super().prune(max_age_days, max_count)
        if deleted:
            try:  # executescript(): execute() would free one page only
                self._pool.run(lambda conn: conn.executescript("PRAGMA incremental_vacuum;"))
            except StoreError as exc:  # best effort: the freed pages are reused anyway
                log.debug("incremental_vacuum skipped: %s", exc)
        return deleted

    # ----------------------------------------------------------------- upkeep (reasonkit.store.hygiene)
    def maintain(self, retention_days: float | None, max_runs: int | None, full: bool = True) -> None:
        """The base class's pass (retried final saves, retention), then, when `full`, a checkpoint
        of the write-ahead log with TRUNCATE."""
        super().maintain(retention_days, max_runs, full)
        if full:
            self.checkpoint()

    def checkpoint(self) -> bool:
        """`PRAGMA wal_checkpoint(TRUNCATE)`: copy the WAL into the database and truncate it to zero
        bytes. False when a reader or writer kept it from completing (the next pass tries again)."""
        try:  # a failure counts against the store's health; a success proves nothing about writes
            row = self._pool.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        except StoreError as exc:
            self.health.failed("checkpoint", exc.__cause__ or exc)
            return False
        return bool(row is not None and row[0] == 0)

    # ----------------------------------------------------------------- reads

    def integrity_check(self) -> str:
        """'ok', or SQLite's description of what is wrong."""
        rows = self._pool.run(lambda conn: conn.execute("PRAGMA integrity_check").fetchall())
        return "\n".join(str(row[0]) for row in rows)
