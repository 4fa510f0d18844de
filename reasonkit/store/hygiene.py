"""Run-store hygiene: private files, write-failure accounting, and the maintenance thread.

- Files: the data folder is made 0700 and the database 0600 (SQLite gives its `-wal` and `-shm`
  files the database's mode); a folder or file left group- or world-readable by an older version is
  tightened when the store opens it.
- `StoreHealth`: every failed write is counted (in `reasonkit_store_write_errors_total` when the
  store has metrics) and the store reports itself degraded until a write succeeds again; the warning
  is logged at most once a minute (with how many were not logged), so a full disk cannot flood the log.
- `FinalSaves`: a final save that failed is kept in memory (the store answers for the run from it)
  and retried, so a live process never leaves its run `running` in the store.
- `Maintenance`: a daemon thread that, every `[storage] maintenance_secs` while a server runs, applies
  the retention settings, retries final saves that failed, and checkpoints the write-ahead log with
  TRUNCATE (with `journal_size_limit` this keeps the WAL from growing without bound). While a final
  save is pending it retries every few seconds.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reasonkit.errors import StoreError

log = logging.getLogger("reasonkit.store")

#: At most one warning about failed writes per this many seconds.
WARN_EVERY_S = 60.0
#: While a final save is pending, the maintenance thread retries it this often.
PENDING_RETRY_S = 5.0
#: Final saves kept in memory for a retry at most (a trace is 0.2-0.5 MB).
MAX_PENDING = 64

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) with the folder itself 0700; tighten an existing folder that
    other users can read (only when this user owns it)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite would create it 0644 under the
    usual umask), and tighten an existing one and its -wal / -shm files."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
        os.close(fd)
    except OSError:
        return  # SQLite reports the problem with the path itself
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        _tighten(p, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
    except OSError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
        except OSError as exc:  # pragma: no cover - e.g. a read-only mount
            log.debug("cannot tighten the permissions of %s: %s", path, exc)


class ErrorMetrics(Protocol):
    def observe_store_error(self, operation: str) -> None: ...


@dataclass
class StoreHealth:
    """Write failures of one store (thread-safe)."""

    path: str
    metrics: ErrorMetrics | None = None
    errors: int = 0  # failed writes since the store opened
    failing: bool = False  # the last write failed (no write has succeeded since)
    last_error: str = ""
    last_error_at: float | None = None  # time.time()
    _suppressed: int = 0
    _last_warning: float | None = None  # time.monotonic() of the last warning logged
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> None:
        if self.failing:
            with self._lock:
                if self.failing:
                    self.failing = False
                    log.warning("run store %s: writes succeed again", self.path)

    def failed(self, operation: str, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.failing = True
            self.last_error = f"{operation}: {exc}"[:500]
            self.last_error_at = time.time()
            now = time.monotonic()
            due = self._last_warning is None or now - self._last_warning >= WARN_EVERY_S
            if due:
                suppressed, self._suppressed, self._last_warning = self._suppressed, 0, now
            else:
                self._suppressed += 1
        if self.metrics is not None:
            try:
                self.metrics.observe_store_error(operation)
            except Exception as mexc:  # noqa: BLE001 - accounting must never break a write path
                log.debug("store error metric failed: %s", mexc)
        if due:
            more = f" ({suppressed} more failures in the last minute)" if suppressed else ""
            log.warning("run store %s: %s failed: %s%s", self.path, operation, exc, more)

    def check(self, pending: int = 0) -> dict[str, Any]:
        """The store's part of /health: "degraded" while writes fail or final saves are pending."""
        status = "degraded" if self.failing or pending else "healthy"
        out: dict[str, Any] = {"status": status, "path": self.path, "write_errors": self.errors}
        if pending:
            out["pending_final_saves"] = pending
        if self.failing:
            out["detail"] = self.last_error
        return out


#: The `[storage]` settings now (`retention_days`, `max_runs`, `maintenance_secs`; a reload may swap them).
Policy = Callable[[], Any]


class Maintenance:
    """The maintenance thread of one store in one process (see the module docstring). `run(days,
    count, full)` is one pass: `full` every `every_s`, else only the pending final saves."""

    def __init__(
        self,
        run: Callable[[float | None, int | None, bool], Any],
        pending: Callable[[], int],
        policy: Policy,
    ):
        self._run = run
        self._pending = pending
        self.policy = policy
        self.passes = 0  # full maintenance passes made (for tests)
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="reasonkit run-store maintenance", daemon=True
        )
        self._thread.start()

    def alive(self) -> bool:
        return self.pid == os.getpid() and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self.pid == os.getpid() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            try:
                storage = self.policy()
                days, count, every = storage.retention_days, storage.max_runs, storage.maintenance_secs
            except Exception:  # noqa: BLE001 - a settings object mid-reload: try again soon
                days, count, every = None, None, PENDING_RETRY_S
            wait = every - (time.monotonic() - last)
            if self._pending():
                wait = min(wait, PENDING_RETRY_S)
            if self._stop.wait(max(0.0, wait)):
                return
            full = time.monotonic() - last >= every
            try:
                self._run(days, count, full)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad pass
                log.debug("run store maintenance pass failed: %s", exc)
            if full:
                last = time.monotonic()
                self.passes += 1


class FinalSaves:
    """The final saves of one store that failed, kept in memory and retried (thread-safe). A live
    process thus never leaves its run `running` in the store; a process that dies first leaves it to
    `mark_interrupted()`. At most `MAX_PENDING` are kept (the oldest is dropped, with a warning: its
    row stays `running` until the next start marks it interrupted)."""

    def __init__(self, save: Callable[[dict[str, Any]], None], where: str):
        self._save = save
        self._where = where
        self._pending: dict[str, dict[str, Any]] = {}  # run_id -> final trace whose save failed
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The trace of `run_id` while its final save waits for a retry (what the store answers for
        it meanwhile), else None."""
        return self._pending.get(run_id)

    def save(self, trace: dict[str, Any]) -> None:
        """`save(trace)`; when it fails (StoreError raised) the trace is kept for a retry."""
        try:
            self._save(trace)
        except StoreError:
            with self._lock:
                self._pending[trace["run_id"]] = trace
                dropped = next(iter(self._pending)) if len(self._pending) > MAX_PENDING else None
                if dropped is not None:
                    del self._pending[dropped]
            if dropped is not None:
                log.warning(
                    "run store %s: more than %d final saves pending; run %s is not kept",
                    self._where,
                    MAX_PENDING,
                    dropped,
                )
            raise
        with self._lock:
            self._pending.pop(trace["run_id"], None)

    def retry(self) -> None:
        """Retry the final saves that failed, oldest first, until one fails again."""
        with self._lock:
            pending = list(self._pending.values())
        for trace in pending:
            try:
                self._save(trace)
            except StoreError:
                break  # the store still fails: the next pass tries again
            with self._lock:
                if self._pending.get(trace["run_id"]) is trace:
                    del self._pending[trace["run_id"]]
