"""MCP tasks (the `io.modelcontextprotocol/tasks` extension) and cancel requests, kept in the run
store's database so that every replica sharing it answers `tasks/get` and any replica can cancel a
run that executes on another.

    records = store.task_records()
    records.create(task_id, run_id, owner, ttl_secs)   before the CreateTaskResult goes out
    records.get(task_id)                                -> TaskRow | None (expired: None)
    records.request_cancel(run_id)                      tasks/cancel, run_result's cancel
    records.cancels_for(run_ids)                        the owner replica's poll: which to stop

A task is a handle on a run: its state (working, completed, cancelled, failed) is the run's, read
from the `runs` table, so the two can never disagree; the task row adds only what the run does not
have (the unguessable task id, its owner, its time to live). A cancel request is a row keyed by run
id, written by whichever replica got the request and read by the replica that executes the run
(`cancels_for`, polled while it has runs in progress). Both tables are created on first use, next to
`runs`, in both back ends, like the idempotency keys (reasonkit/store/idempotency.py).

Every method blocks on I/O (call it in a worker thread from async code); database errors leave as
`StoreError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from reasonkit.errors import StoreError
from reasonkit.store.table import Dialect

Runner = Callable[[Callable[[Any], Any]], Any]
Transaction = Callable[[Any], AbstractContextManager[Any]]

#: A cancel request is dropped this long after it was made (its run has ended long before).
CANCEL_KEEP_SECS = 24 * 3600.0

_TASKS = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id    TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    owner      TEXT,
    created_at {real} NOT NULL,
    expires_at {real} NOT NULL
)
"""
_CANCELS = """
CREATE TABLE IF NOT EXISTS run_cancels (
    run_id       TEXT PRIMARY KEY,
    requested_at {real} NOT NULL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks (expires_at)"


def table_ddl(dialect: Dialect) -> list[str]:
    """The statements that create the task and cancel-request tables (if they are not there yet)."""
    real = dialect.types["real"]
    return [_TASKS.format(real=real), _CANCELS.format(real=real), _INDEX]


@dataclass(frozen=True)
class TaskRow:
    """One task: the run it is a handle on, the principal it belongs to (None: stored without
    one, which only admins see), when it was made and until when it is kept (seconds since the
    epoch)."""

    task_id: str
    run_id: str
    owner: str | None
    created_at: float
    expires_at: float

    @property
    def ttl_secs(self) -> float:
        return self.expires_at - self.created_at


@dataclass
class TaskRecords:
    """The `tasks` and `run_cancels` tables of one store's database (see the module docstring).
    Get it from the store: `store.task_records()`."""

    #: `run(operation)` runs `operation(connection)`; every database error leaves as a StoreError
    run: Runner
    #: `begin(connection)`: a write transaction on it
    begin: Transaction
    dialect: Dialect
    _ready: bool = field(default=False, init=False)

    def _write(self, operation: Callable[[Any], Any]) -> Any:
        self._ensure_tables()

        def in_transaction(conn: Any) -> Any:
            with self.begin(conn):
                return operation(conn)

        return self.run(in_transaction)

    def _ensure_tables(self) -> None:
        if self._ready:
            return

        def create(conn: Any) -> None:
            with self.begin(conn):
                for statement in table_ddl(self.dialect):
                    conn.execute(statement)

        try:
            self.run(create)
        except StoreError:  # another process created them at the same moment: they are there now
            self.run(lambda conn: conn.execute("SELECT count(*) FROM run_cancels").fetchone())
        self._ready = True

    def create(self, task_id: str, run_id: str, owner: str | None, ttl_secs: float) -> TaskRow:
        """Record a task; committed when this returns, so any replica's `get` finds it (SEP-2663:
        no CreateTaskResult before the task is durable). Expired tasks are deleted on the way."""
        sql, now = self.dialect.sql, time.time()
        row = TaskRow(task_id, run_id, owner, now, now + ttl_secs)

        def operation(conn: Any) -> None:
            conn.execute(sql("DELETE FROM tasks WHERE expires_at <= ?"), (now,))
            conn.execute(sql("DELETE FROM run_cancels WHERE requested_at <= ?"), (now - CANCEL_KEEP_SECS,))
            conn.execute(
                sql("INSERT INTO tasks (task_id, run_id, owner, created_at, expires_at) VALUES (?,?,?,?,?)"),
                (row.task_id, row.run_id, row.owner, row.created_at, row.expires_at),
            )

        self._write(operation)
        return row

    def get(self, task_id: str) -> TaskRow | None:
        """The task with this id, or None (unknown, or past its time to live)."""
        self._ensure_tables()
        sql = self.dialect.sql("SELECT run_id, owner, created_at, expires_at FROM tasks WHERE task_id = ?")
        found = self.run(lambda conn: conn.execute(sql, (task_id,)).fetchone())
        if found is None or found["expires_at"] <= time.time():
            return None
        return TaskRow(task_id, found["run_id"], found["owner"], found["created_at"], found["expires_at"])

    def request_cancel(self, run_id: str) -> None:
        """Ask whichever replica executes `run_id` to stop it (it polls `cancels_for`)."""
        sql = self.dialect.sql(
            "INSERT INTO run_cancels (run_id, requested_at) VALUES (?, ?) ON CONFLICT (run_id) DO NOTHING"
        )
        self._write(lambda conn: conn.execute(sql, (run_id, time.time())))

    def cancels_for(self, run_ids: Iterable[str]) -> set[str]:
        """Which of `run_ids` someone asked to cancel."""
        ids = list(run_ids)
        if not ids:
            return set()
        self._ensure_tables()
        marks = ", ".join("?" * len(ids))
        sql = self.dialect.sql(f"SELECT run_id FROM run_cancels WHERE run_id IN ({marks})")
        rows = self.run(lambda conn: conn.execute(sql, tuple(ids)).fetchall())
        return {row["run_id"] for row in rows}
