"""SQLite connections for the run store: a small pool, write transactions, retries while locked.

- An operation takes a connection for its thread alone and gives it back (sqlite3 objects must not be
  used by two threads at once; worker threads come and go). Idle connections stay open: closing the
  last connection of a WAL database checkpoints and deletes the WAL, which would make every write pay
  for a checkpoint. After a fork the child opens its own and never touches the parent's.
- `journal_size_limit` caps what the write-ahead log keeps after a checkpoint (the store's
  maintenance checkpoints it with TRUNCATE, see reasonkit.store.hygiene).
- `synchronous=NORMAL` (a commit survives a process crash; a power cut may lose the last commits but
  never corrupts the file) and `busy_timeout`; write transactions are opened with `BEGIN IMMEDIATE`,
  and an operation that still finds the database locked is retried with backoff, so several
  processes (server workers, `rk think`, `rk runs prune`) can write the same file at once.
- Every sqlite3 error leaves as a `StoreError` (its cause is the sqlite3 error).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from reasonkit.errors import StoreError

log = logging.getLogger("reasonkit.store")

BUSY_TIMEOUT_MS = 5000
#: `PRAGMA journal_size_limit`: after a checkpoint the write-ahead log is truncated to at most this.
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024

_T = TypeVar("_T")

# Connections inherited from a parent process across fork(). Closing (or garbage-collecting) them in
# the child could disturb the parent's locks and WAL, so they are kept referenced and never used.
_FORK_LEFTOVERS: list[sqlite3.Connection] = []


def is_busy(exc: BaseException) -> bool:
    """Is this sqlite3 error "database is locked/busy" (worth retrying)?"""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return "locked" in message or "busy" in message


class ConnectionPool:
    """Connections to one SQLite file, each used by one thread at a time. Safe to share between
    threads; a forked child opens its own."""

    def __init__(self, path: Path, busy_timeout_ms: int, size: int, attempts: int):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.size = size  # idle connections kept open
        self.attempts = attempts  # tries for an operation that keeps finding the database locked
        self._lock = threading.Lock()
        self.idle: list[sqlite3.Connection] = []  # open connections no thread is using
        self._pid = os.getpid()  # the process the pooled connections belong to
        self._generation = 0  # bumped by close(): connections from before are closed on release

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False because a
        # pooled connection moves between threads (never used by two at once).
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} cannot be opened: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path} cannot be opened as a ReasonKit run database: {exc}") from exc
        return conn

    def _acquire(self) -> tuple[sqlite3.Connection, int]:
        """A connection for the calling thread's exclusive use until _release()."""
        with self._lock:
            if self._pid != os.getpid():
                # Inherited across fork: the parent's connections are never used, closed or even
                # garbage-collected here (that could disturb the parent's locks and WAL).
                _FORK_LEFTOVERS.extend(self.idle)
                self.idle, self._pid = [], os.getpid()
            generation = self._generation
            if self.idle:
                return self.idle.pop(), generation
        return self._connect(), generation

    def _release(self, conn: sqlite3.Connection, generation: int) -> None:
        with self._lock:
            current = generation == self._generation and self._pid == os.getpid()
            if current and not conn.in_transaction and len(self.idle) < self.size:
                self.idle.append(conn)
                return
        try:
            conn.close()
        except sqlite3.Error:  # pragma: no cover
            pass

    def close(self) -> None:
        """Close the idle connections (one still in use is closed when its operation ends). The pool
        opens new ones if it is used again."""
        with self._lock:
            idle = self.idle if self._pid == os.getpid() else []
            self.idle = []
            self._generation += 1
        for conn in idle:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `operation` with a connection; retry (with backoff) while the database stays locked.
        A sqlite3 error that remains is raised as a StoreError."""
        delay = 0.02
        for attempt in range(self.attempts):
            conn, generation = self._acquire()
            try:
                return operation(conn)
            except sqlite3.Error as exc:
                if not is_busy(exc) or attempt >= self.attempts - 1:
                    raise StoreError(f"run store {self.path}: {exc}") from exc
                log.debug("run store busy (%s), retrying", exc)
            finally:
                self._release(conn, generation)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
        raise StoreError(f"run store {self.path}: no attempt made (attempts={self.attempts})")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction. IMMEDIATE takes the write lock up front, so a busy database makes us
    wait in busy_timeout instead of failing at the first write (SQLITE_BUSY_SNAPSHOT)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # pragma: no cover - the original error matters more
                pass
        raise


class _Write:
    __slots__ = ("sql", "values", "done", "error")

    def __init__(self, sql: str, values: list[object]):
        self.sql, self.values = sql, values
        self.done = False
        self.error: StoreError | None = None


class GroupCommit:
    """Concurrent writes of one process share transactions ("group commit"). A caller blocks until its
    statement is committed, as with its own transaction, but while one thread writes, the statements
    that other threads submit queue up and the next writer commits them all in one transaction: 200
    runs saving at once make a few transactions instead of 200 threads taking turns at the write lock.
    The thread that commits is one of the callers (no thread of its own); it hands over after
    `MAX_ROUNDS` transactions so that no caller waits behind an endless queue."""

    MAX_ROUNDS = 4

    def __init__(self, pool: ConnectionPool):
        self.pool = pool
        self.transactions = 0  # committed or failed (for tests and benchmarks)
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Write] = []
        self._leader = False  # a thread is committing
        self._pid = os.getpid()

    def write(self, sql: str, values: list[object]) -> None:
        """Execute `sql` with `values` in a write transaction (maybe shared); StoreError on failure."""
        if self._pid != os.getpid():  # forked: the parent's queue and lock are not ours
            self._reset()
        item = _Write(sql, values)
        with self._cond:
            self._queue.append(item)
            while self._leader and not item.done:
                self._cond.wait()
            if not item.done:
                self._leader = True
        if not item.done:
            self._lead()
        if item.error is not None:
            raise item.error
        if not item.done:  # pragma: no cover - only if a commit died of a non-SQLite error
            raise StoreError(f"run store {self.pool.path}: the write was not committed")

    def _lead(self) -> None:
        try:
            for _ in range(self.MAX_ROUNDS):
                with self._cond:
                    batch, self._queue = self._queue, []
                if not batch:
                    break
                self._commit(batch)
                with self._cond:
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._leader = False
                self._cond.notify_all()

    def _commit(self, batch: list[_Write]) -> None:
        def operation(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                for item in batch:
                    conn.execute(item.sql, item.values)

        self.transactions += 1
        try:
            self.pool.run(operation)
        except BaseException as exc:
            if not isinstance(exc, StoreError):  # not SQLite's: fail the batch, never leave it waiting
                for item in batch:
                    item.error, item.done = StoreError(f"run store {self.pool.path}: {exc!r}"), True
                raise
            cause = exc.__cause__
            if len(batch) > 1 and not (cause is not None and is_busy(cause)):
                for item in batch:  # one bad statement must not fail the others: each on its own
                    self._commit([item])
                return
            for item in batch:
                item.error = exc
        for item in batch:
            item.done = True
