"""The run store: every run (CLI and MCP) with its full trace, in one embedded SQLite database.

- The table and the trace <-> row mapping: `reasonkit.store.schema`. Connections, write transactions
  and retries while another process holds the lock: `reasonkit.store.connections`. Owners and their
  liveness: `reasonkit.store.liveness`. Saving a run while it runs: `reasonkit.store.recorder`.
- WAL journal, so readers never block writers and several processes can share the file.
- Crash recovery: `start_trace()` records the owner (hostname, pid, process start time). A row still
  `running` whose owner process is gone (or whose pid now belongs to another process) is marked
  `interrupted` by `mark_interrupted()`, which the server calls at start-up.
- Retention: `prune()` deletes old finished runs; `prune_if_due()` does so at most every few minutes,
  for a long-running server.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonkit.errors import InputError, StoreError
from reasonkit.observability.redaction import redact_value
from reasonkit.store import schema
from reasonkit.store.connections import (
    BUSY_TIMEOUT_MS,
    ConnectionPool,
    GroupCommit,
    is_busy,
    write_transaction,
)
from reasonkit.store.hygiene import ErrorMetrics, Maintenance, StoreHealth, Upkeep, private_dir, private_file
from reasonkit.store.liveness import Owner, current_owner, owner_gone

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult

log = logging.getLogger("reasonkit.store")

SCHEMA_VERSION = schema.SCHEMA_VERSION
#: Defaults of a new store's `write_attempts` and `pool_size`.
WRITE_ATTEMPTS = 8
POOL_SIZE = 4


class RunStore(Upkeep):
    """Runs and their traces in one SQLite file. Safe to share between threads and processes."""

    #: Rows owned by another host (whose processes we cannot see) are marked interrupted only when
    #: they have not been updated for this long.
    foreign_stale_secs: float = 6 * 3600
    #: `[privacy] redact_pii`: traces are stored with personal data replaced (observability/redaction.py)
    redact_pii: bool = False

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        metrics: ErrorMetrics | None = None,
    ):
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        private_dir(self.path.parent)  # 0700 folder, 0600 files (reasonkit.store.hygiene)
        private_file(self.path)
        self.health = StoreHealth(str(self.path), metrics)
        self._pool = ConnectionPool(self.path, busy_timeout_ms, POOL_SIZE, WRITE_ATTEMPTS)
        self._group = GroupCommit(self._pool)  # run rows written by concurrent threads share transactions
        self._prune_lock = threading.Lock()
        self._last_prune: float | None = None  # time.monotonic() of the last prune_if_due() prune
        self._pending: dict[str, dict[str, Any]] = {}  # run_id -> final trace whose save failed
        self._pending_lock = threading.Lock()
        self.maintenance: Maintenance | None = None
        self._init_schema()

    @classmethod
    def for_settings(cls, settings: Any, metrics: ErrorMetrics | None = None) -> RunStore:
        store = cls(Path(settings.data_dir()) / "runs.db", metrics=metrics)
        store.redact_pii = settings.privacy.redact_pii
        return store

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def write_attempts(self) -> int:
        """Attempts for an operation that keeps hitting "database is locked" after busy_timeout."""
        return self._pool.attempts

    @write_attempts.setter
    def write_attempts(self, value: int) -> None:
        self._pool.attempts = value

    @property
    def pool_size(self) -> int:
        """Idle connections kept open (see reasonkit.store.connections)."""
        return self._pool.size

    @pool_size.setter
    def pool_size(self, value: int) -> None:
        self._pool.size = value

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
                    for statement in schema.migration_statements(target):
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

    # ----------------------------------------------------------------- writes
    def start(self, result: RunResult) -> None:
        """Record a run as `running`, owned by this process."""
        self.start_trace(result.trace())

    def save(self, result: RunResult) -> None:
        """Insert or update a run with its full trace, in one transaction."""
        self.save_trace(result.trace())

    def start_trace(self, trace: dict[str, Any]) -> None:
        """Record the run of `trace` (a `RunResult.trace()`) as `running`, owned by this process:
        every column is (re)written, the owner included."""
        trace = redact_value(trace) if self.redact_pii else trace
        row = schema.row_from_trace(trace, time.time())
        row["status"] = "running"
        row.update(self._owner_columns(), trace=json.dumps(trace, ensure_ascii=False))
        columns = list(row)
        self._upsert(row, schema.upsert_sql(columns, [c for c in columns if c != "run_id"]), "start")

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or update the run of `trace` (a `RunResult.trace()`), in one transaction. A stored
        run keeps its owner and start time."""
        trace = redact_value(trace) if self.redact_pii else trace
        row = schema.row_from_trace(trace, time.time())
        row.update(self._owner_columns(), trace=json.dumps(trace, ensure_ascii=False))
        self._upsert(row, schema.upsert_sql(list(row), schema.SAVE_FIELDS), "save")

    @staticmethod
    def _owner_columns() -> dict[str, Any]:
        owner = current_owner()
        return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_start": owner.start}

    def _upsert(self, row: dict[str, Any], sql: str, name: str) -> None:
        """One run row, in a transaction shared with this process's concurrent writes (GroupCommit)."""
        self._write(name, lambda: self._group.write(sql, list(row.values())))

    def _write(self, name: str, write: Any) -> Any:
        """`write()`, counting a failure (metrics, /health, a rate-limited warning)."""
        if self.maintenance is not None and not self.maintenance.alive():  # forked: restart it here
            self.start_maintenance(self.maintenance.policy)
        try:
            out = write()
        except StoreError as exc:
            self.health.failed(name, exc.__cause__ or exc)
            raise
        self.health.ok()
        return out

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
            with write_transaction(conn):
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
                    conn.execute(
                        "UPDATE runs SET status = 'interrupted', complete = 0, "
                        "stop_reason = COALESCE(stop_reason, ?), updated_at = ?, trace = ? "
                        "WHERE run_id = ?",
                        (reason, now, schema.interrupted_trace(row["trace"], reason), run_id),
                    )
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
        """Delete finished runs started more than `max_age_days` ago and/or all but the newest
        `max_count` finished runs. Running runs are never deleted. Returns how many were deleted."""
        if max_age_days is None and max_count is None:
            return 0
        if max_age_days is not None and max_age_days < 0:
            raise InputError("max_age_days must be >= 0")
        if max_count is not None and max_count < 0:
            raise InputError("max_count must be >= 0")

        def operation(conn: sqlite3.Connection) -> int:
            deleted = 0
            with write_transaction(conn):
                if max_age_days is not None:
                    cutoff = time.time() - max_age_days * 86400
                    deleted += conn.execute(
                        "DELETE FROM runs WHERE status != 'running' AND started_at < ?", (cutoff,)
                    ).rowcount
                if max_count is not None:
                    deleted += conn.execute(
                        "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs "
                        "WHERE status != 'running' ORDER BY started_at DESC, run_id DESC "
                        "LIMIT -1 OFFSET ?)",
                        (max_count,),
                    ).rowcount
            return deleted

        deleted = self._write("prune", lambda: self._pool.run(operation))
        if deleted:
            try:  # executescript(): execute() would free one page only
                self._pool.run(lambda conn: conn.executescript("PRAGMA incremental_vacuum;"))
            except StoreError as exc:  # best effort: the freed pages are reused anyway
                log.debug("incremental_vacuum skipped: %s", exc)
        return deleted

    def prune_if_due(self, max_age_days: float | None, max_count: int | None, every_s: float = 300.0) -> int:
        """`prune()`, unless this store pruned less than `every_s` seconds ago (then 0 at once, with
        no I/O): cheap enough to call after every run of a long-running server. The first call always
        prunes. Nothing configured (both None) is a no-op. Errors are raised as by `prune()`; a failed
        attempt counts as done, so a broken store is not retried before `every_s` has passed."""
        if max_age_days is None and max_count is None:
            return 0
        with self._prune_lock:
            now = time.monotonic()
            if self._last_prune is not None and now - self._last_prune < every_s:
                return 0
            self._last_prune = now
        return self.prune(max_age_days, max_count)

    # ----------------------------------------------------------------- reads
    def get(self, run_id: str) -> dict[str, Any] | None:
        """The full trace of a run, or None."""
        pending = self._pending.get(run_id)
        if pending is not None:
            return json.loads(json.dumps(pending))
        row = self._pool.run(
            lambda conn: conn.execute("SELECT trace FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        )
        if row is None or row["trace"] is None:
            return None
        return json.loads(row["trace"])

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The columns of a run (no trace), or None."""
        pending = self._pending.get(run_id)
        if pending is not None:
            summary = schema.row_from_trace(pending, time.time())
            summary.update(self._owner_columns())
            return schema.summary_from_row(summary)  # type: ignore[arg-type]
        sql = f"SELECT {', '.join(schema.ROW_FIELDS)} FROM runs WHERE run_id = ?"
        row = self._pool.run(lambda conn: conn.execute(sql, (run_id,)).fetchone())
        return None if row is None else schema.summary_from_row(row)

    def list(
        self, limit: int = 50, status: str | None = None, kind_or_name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Runs, newest first (`limit` <= 0: all), optionally of one status (one of
        `reasonkit.engine.result.RUN_STATUSES`, else InputError) and/or one kind or name."""
        sql, args = schema.list_query(limit, status, kind_or_name, "?", -1)
        rows = self._pool.run(lambda conn: conn.execute(sql, args).fetchall())
        return [schema.listing_from_row(row) for row in rows]

    def resolve(self, prefix: str, limit: int = 10) -> builtins.list[str]:
        """Run ids equal to `prefix`, else those starting with it (at most `limit`)."""
        if not prefix:
            return []
        exact = self._pool.run(
            lambda conn: conn.execute("SELECT run_id FROM runs WHERE run_id = ?", (prefix,)).fetchone()
        )
        if exact is not None:
            return [exact["run_id"]]
        rows = self._pool.run(
            lambda conn: conn.execute(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started_at DESC LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        )
        return [row["run_id"] for row in rows]

    def count(self) -> int:
        return self._pool.run(lambda conn: conn.execute("SELECT count(*) FROM runs").fetchone()[0])

    def integrity_check(self) -> str:
        """'ok', or SQLite's description of what is wrong."""
        rows = self._pool.run(lambda conn: conn.execute("PRAGMA integrity_check").fetchall())
        return "\n".join(str(row[0]) for row in rows)
