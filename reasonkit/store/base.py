"""The run store: the interface the run service, the recorder, the CLI and the server use, and what
both back ends share.

Two implementations: `reasonkit.store.sqlite.SqliteRunStore` (embedded, one host) and
`reasonkit.store.postgres.PostgresRunStore` (one database shared by replicas).
`reasonkit.store.factory.open_store(settings)` picks one from `[storage] url`.

`StoreBackend` is a base class rather than a Protocol so that the lifecycle is written once: the
trace -> row mapping with PII redaction, start/save, retention (`prune`, `prune_if_due`), the reads
and the context manager sit here, over the primitives a back end supplies (`_run`, `_begin`,
`_upsert`, `mark_interrupted`, `idempotency_keys`, `close`). The maintenance hooks (final saves kept
for a retry, the maintenance thread, WAL checkpoints, write-failure health, leases) are declared here
too, with defaults that mean "this back end has none", so that no caller probes with `getattr`.

Every method is synchronous and may block on I/O: async callers run it in a worker thread
(`anyio.to_thread.run_sync`). Every failure leaves as a `StoreError`.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from reasonkit.errors import InputError, StoreError
from reasonkit.observability.redaction import redact_value
from reasonkit.store import idempotency, schema
from reasonkit.store.liveness import current_owner
from reasonkit.store.table import Dialect
from reasonkit.store.tasks import TaskRecords

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult
    from reasonkit.principal import Principal
    from reasonkit.store.hygiene import FinalSaves, Maintenance, Policy, StoreHealth
    from reasonkit.store.idempotency import IdempotencyKeys

_T = TypeVar("_T")


class StoreBackend(ABC):
    """A run store. `path` names it in messages: the SQLite file, or the database URL without its
    password."""

    #: The back end's SQL flavour (reasonkit.store.table).
    dialect: ClassVar[Dialect]
    #: `[privacy] redact_pii`: traces are stored with personal data replaced (observability/redaction.py)
    redact_pii: bool = False
    #: Write failures counted and logged by the store itself (rate-limited), shown in /health.
    #: None: the store does not count them, so the caller logs each one.
    health: StoreHealth | None = None
    #: This process's maintenance thread (retention, retried final saves, checkpoints). None: the run
    #: service applies the retention settings after each run instead.
    maintenance: Maintenance | None = None
    #: Final saves that failed, kept in memory for a retry (store/hygiene.py). None: none are kept.
    _finals: FinalSaves | None = None
    _tasks: TaskRecords | None = None

    def __init__(self, path: Path | str):
        self.path = path
        self._prune_lock = threading.Lock()
        self._last_prune: float | None = None  # time.monotonic() of the last prune_if_due() prune

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Stop the store's threads and close its connections; it reopens lazily if used again."""

    @abstractmethod
    def _run(self, operation: Callable[[Any], _T]) -> _T:
        """`operation(connection)`; every database error leaves as a StoreError."""

    @abstractmethod
    def _begin(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction on `conn`: committed when the block ends, rolled back on an error."""

    def _transaction(self, name: str, operation: Callable[[Any], _T]) -> _T:
        """`operation(connection)` in one write transaction."""

        def in_transaction(conn: Any) -> _T:
            with self._begin(conn):
                return operation(conn)

        return self._write(name, lambda: self._run(in_transaction))

    @abstractmethod
    def _upsert(self, row: dict[str, Any], update: builtins.list[str], name: str) -> None:
        """Insert `row`, or overwrite the `update` columns of the run already stored."""

    @abstractmethod
    def idempotency_keys(self) -> IdempotencyKeys:
        """The idempotency keys of MCP tool calls, kept in this store's database."""

    def task_records(self) -> TaskRecords:
        """MCP tasks and cancel requests, in this store's database (reasonkit/store/tasks.py)."""
        if self._tasks is None:
            self._tasks = TaskRecords(self._run, self._begin, self.dialect)
        return self._tasks

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
        row = self._row(trace)
        row["status"] = "running"
        self._upsert(row, [c for c in row if c != "run_id"], "start")

    def save_trace(self, trace: dict[str, Any]) -> None:
        """Insert or update the run of `trace` (a `RunResult.trace()`), in one transaction. A stored
        run keeps its owner and start time."""
        self._upsert(self._row(trace), list(schema.SAVE_FIELDS), "save")

    def save_final(self, trace: dict[str, Any]) -> None:
        """The last save of a run. With `_finals`, a failed one (StoreError raised) is kept in memory:
        `get()` and `summary()` answer from it and the maintenance thread retries it."""
        if self._finals is None:
            self.save_trace(trace)
        else:
            self._finals.save(trace)

    def owner_columns(self) -> dict[str, Any]:
        """The owner of the runs this process writes (see reasonkit.store.liveness)."""
        owner = current_owner()
        return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_start": owner.start}

    def _row(self, trace: dict[str, Any]) -> dict[str, Any]:
        owner = trace.get("owner")  # a principal's name, never redacted: access checks read it
        trace = redact_value(trace) if self.redact_pii else trace
        row = schema.row_from_trace(trace, time.time())
        row.update(self.owner_columns(), owner=owner, trace=json.dumps(trace, ensure_ascii=False))
        return row

    @abstractmethod
    def mark_interrupted(self) -> int:
        """Mark `running` runs whose owner is gone as `interrupted`; returns how many."""

    def _interrupt(self, conn: Any, run_id: str, trace_text: str | None, reason: str, now: float) -> None:
        """Mark one run interrupted (its trace too), inside the caller's transaction."""
        trace = schema.interrupted_trace(trace_text, reason)
        conn.execute(self.dialect.sql(schema.INTERRUPT_SQL), (reason, now, trace, run_id))

    # ----------------------------------------------------------------- retention
    def prune(self, max_age_days: float | None = None, max_count: int | None = None) -> int:
        """Delete finished runs started more than `max_age_days` ago and/or all but the newest
        `max_count` finished runs. Running runs are never deleted. Returns how many were deleted."""
        if max_age_days is None and max_count is None:
            return 0
        if max_age_days is not None and max_age_days < 0:
            raise InputError("max_age_days must be >= 0")
        if max_count is not None and max_count < 0:
            raise InputError("max_count must be >= 0")
        queries = schema.prune_queries(self.dialect, max_age_days, max_count, time.time())
        sql = self.dialect.sql

        def operation(conn: Any) -> int:
            for statement in idempotency.table_ddl(self.dialect):
                conn.execute(statement)
            deleted = 0
            for delete, args in queries:  # a pruned run's idempotency keys go with it
                conn.execute(sql(idempotency.forget_runs_sql(delete)), args)
                deleted += conn.execute(sql(delete), args).rowcount
            return deleted

        return self._transaction("prune", operation)

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
    def _before_read(self) -> None:  # noqa: B027 - a hook: nothing to do is the default
        """Called before `get`, `summary` and `list`: a back end brings run states up to date here."""

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._run(lambda conn: conn.execute(self.dialect.sql(sql), args).fetchone())

    def _all(self, sql: str, args: builtins.list[Any] | tuple[Any, ...]) -> builtins.list[Any]:
        return self._run(lambda conn: conn.execute(self.dialect.sql(sql), args).fetchall())

    def _write(self, name: str, write: Callable[[], _T]) -> _T:
        """`write()`, counting a failure in `health` (metrics, /health, a rate-limited warning), and
        restarting the maintenance thread first in a forked process."""
        if self.maintenance is not None and not self.maintenance.alive():
            self.start_maintenance(self.maintenance.policy)
        try:
            out = write()
        except StoreError as exc:
            if self.health is not None:
                self.health.failed(name, exc.__cause__ or exc)
            raise
        if self.health is not None:
            self.health.ok()
        return out

    def _pending_final(self, run_id: str) -> dict[str, Any] | None:
        """A run's final save kept in memory after a failed write (store/hygiene.py `FinalSaves`),
        which reads answer from first; None: nothing is pending."""
        return None if self._finals is None else self._finals.get(run_id)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The full trace of a run (a pending final save's first), its `owner` as the owner column
        says (None: stored before owners were recorded), or None."""
        pending = self._pending_final(run_id)
        if pending is not None:
            copy: dict[str, Any] = json.loads(json.dumps(pending))
            return copy
        self._before_read()
        row = self._one("SELECT trace, owner FROM runs WHERE run_id = ?", (run_id,))
        if row is None or row["trace"] is None:
            return None
        trace: dict[str, Any] = json.loads(row["trace"])
        trace["owner"] = row["owner"]
        return trace

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The columns of a run (a pending final save's first; no trace), or None."""
        pending = self._pending_final(run_id)
        if pending is not None:
            row = schema.row_from_trace(pending, time.time())
            row.update(self.owner_columns())
            return schema.summary_from_row(row)
        self._before_read()
        row = self._one(f"SELECT {', '.join(schema.ROW_FIELDS)} FROM runs WHERE run_id = ?", (run_id,))
        return None if row is None else schema.summary_from_row(row)

    def list(
        self,
        limit: int = 50,
        status: str | None = None,
        kind_or_name: str | None = None,
        viewer: Principal | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Runs, newest first (`limit` <= 0: all), optionally of one status (one of
        `reasonkit.engine.result.RUN_STATUSES`, else InputError) and/or one kind or name; only those
        `viewer` may see (None: all, as for an admin)."""
        self._before_read()
        owner = None if viewer is None or viewer.admin else viewer.name
        sql, args = schema.list_query(self.dialect, limit, status, kind_or_name, owner)
        return [schema.listing_from_row(row) for row in self._all(sql, args)]

    def resolve(self, prefix: str, limit: int = 10) -> builtins.list[str]:
        """Run ids equal to `prefix`, else those starting with it (at most `limit`)."""
        if not prefix:
            return []
        exact = self._one("SELECT run_id FROM runs WHERE run_id = ?", (prefix,))
        if exact is not None:
            return [exact["run_id"]]
        rows = self._all(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started_at DESC LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return [row["run_id"] for row in rows]

    def count(self) -> int:
        row = self._one("SELECT count(*) AS n FROM runs", ())
        return int(row["n"]) if row else 0

    # ----------------------------------------------------------------- maintenance hooks
    def pending_finals(self) -> int:
        """Final saves that failed and wait for a retry (see `save_final`)."""
        return 0 if self._finals is None else len(self._finals)

    def start_maintenance(self, policy: Policy) -> None:
        """Start (or restart after a fork) this process's maintenance thread, which reads the
        `[storage]` settings from `policy()` at each pass. A back end that keeps no failed final saves
        has none (the run service then prunes after each run); both shipped back ends have one."""
        from reasonkit.store.hygiene import Maintenance

        if self._finals is None:
            return
        if self.maintenance is not None:
            self.maintenance.stop(0)
        self.maintenance = Maintenance(self.maintain, self.pending_finals, policy)

    def maintain(self, retention_days: float | None, max_runs: int | None, full: bool = True) -> None:
        """One maintenance pass: retry pending final saves; when `full`, also apply the retention
        settings (0 or None: off). A write failure is counted and logged by the back end."""
        if self._finals is not None:
            self._finals.retry()
        if full:
            try:
                self.prune(retention_days or None, max_runs or None)
            except StoreError:
                pass

    def checkpoint(self) -> bool:
        """Fold the write-ahead log into the database; False when it could not complete. True where
        there is nothing to fold (the database server does it)."""
        return True

    def health_check(self) -> dict[str, Any] | None:
        """The store's part of /health: degraded while writes fail or final saves are pending. None
        for a store that keeps no `health`."""
        return None if self.health is None else self.health.check(self.pending_finals())

    def lease(self, run_id: str) -> tuple[str, float | None] | None:
        """(owner replica id, lease end in seconds since the epoch) of a run, or None: where runs
        hold no leases (SQLite sees its owners' processes), or for an unknown run."""
        return None


def redact_url(url: str) -> str:
    """The database URL with its password replaced by `***` (for messages and logs), parseable or
    not. Imported here: importing the store stays light (no pydantic; only PostgreSQL URLs need it)."""
    from reasonkit.config.show import mask_url

    return mask_url(url, "***")
