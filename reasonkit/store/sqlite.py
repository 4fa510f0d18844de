"""Run store: every run (CLI and MCP) with its full trace, in one embedded SQLite database.

Design:
- One row per run in `runs`: the fields `rk runs list` and the MCP server need as columns, plus the
  full trace JSON (`RunResult.trace()`) as the last column (listing never reads it).
- WAL journal, `synchronous=NORMAL` (a commit survives a process crash; a power cut may lose the last
  commits but never corrupts the file), `busy_timeout`, and write transactions opened with
  `BEGIN IMMEDIATE` plus a bounded retry on "database is locked", so several processes (server
  workers, `rk think`, `rk runs prune`) can write the same file at once.
- A small pool of connections: an operation takes one for its thread alone and gives it back
  (sqlite3 objects must not be used by two threads at once; worker threads come and go). Idle
  connections stay open: closing the last connection of a WAL database checkpoints and deletes the
  WAL, which would make every write pay for a checkpoint. After a fork the child opens its own.
- Crash recovery: `start()` records the owner (hostname, pid, process start time). A row still
  `running` whose owner process is gone (or whose pid now belongs to another process) is marked
  `interrupted` by `mark_interrupted()`, which the server calls at start-up.
"""

from __future__ import annotations

import builtins
import inspect
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reasonkit.errors import StoreError  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult

log = logging.getLogger("reasonkit.store")

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
# Statuses a stored run can have: the engine's RunStatus plus "interrupted" (set only by the store).
STATUSES = ("running", "complete", "incomplete", "cancelled", "failed", "interrupted")
FINAL_STATUSES = frozenset(STATUSES) - {"running"}

_T = TypeVar("_T")

# Connections inherited from a parent process across fork(). Closing (or garbage-collecting) them in
# the child could disturb the parent's locks and WAL, so they are kept referenced and never used.
_FORK_LEFTOVERS: list[sqlite3.Connection] = []

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      REAL NOT NULL,
    finished_at     REAL,
    updated_at      REAL NOT NULL,
    complete        INTEGER NOT NULL DEFAULT 0,
    confidence      REAL,
    min_confidence  REAL,
    meets_threshold INTEGER NOT NULL DEFAULT 0,
    stop_reason     TEXT,
    provider        TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    inputs          TEXT NOT NULL DEFAULT '{}',
    answer          TEXT NOT NULL DEFAULT '',
    tokens_input    INTEGER NOT NULL DEFAULT 0,
    tokens_output   INTEGER NOT NULL DEFAULT 0,
    tokens_cache_read  INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    tokens_total    INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL NOT NULL DEFAULT 0,
    duration_ms     REAL NOT NULL DEFAULT 0,
    owner_host      TEXT NOT NULL DEFAULT '',
    owner_pid       INTEGER,
    owner_start     TEXT NOT NULL DEFAULT '',
    trace           TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_name ON runs (name, started_at DESC);
"""

# Version -> statements that bring a database from version-1 to version. Add new entries here.
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}

_ROW_FIELDS = (
    "run_id", "kind", "name", "status", "started_at", "finished_at", "updated_at", "complete", "confidence",
    "min_confidence", "meets_threshold", "stop_reason", "provider", "model", "inputs", "answer",
    "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write", "tokens_total",
    "cost_usd", "duration_ms", "owner_host", "owner_pid", "owner_start",
)  # fmt: skip
_LIST_FIELDS = (
    "run_id", "started_at", "finished_at", "kind", "name", "status", "confidence", "meets_threshold",
    "duration_ms", "cost_usd", "tokens_total",
)  # fmt: skip
# Columns a save() overwrites (never the owner, never started_at once set).
_SAVE_FIELDS = (
    "status", "finished_at", "updated_at", "complete", "confidence", "min_confidence", "meets_threshold",
    "stop_reason", "provider", "model", "inputs", "answer", "tokens_input", "tokens_output",
    "tokens_cache_read", "tokens_cache_write", "tokens_total", "cost_usd", "duration_ms", "trace",
)  # fmt: skip




# --------------------------------------------------------------------------- process identity
def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc, or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return ""


def _owner() -> tuple[str, int, str]:
    pid = os.getpid()
    st = _proc_stat(pid)
    return _hostname(), pid, st[1] if st else ""


def _pid_alive(pid: int, start: str) -> bool:
    """Is the process that owned a row still running? A reused pid (different start time) or a
    zombie counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:  # pragma: no cover - e.g. Windows quirks
        return False
    st = _proc_stat(pid)
    if st is None:
        return True
    state, started = st
    if state in ("Z", "X"):
        return False
    return not (start and started != start)


# --------------------------------------------------------------------------- rows
def _row_from_trace(trace: dict[str, Any], now: float) -> dict[str, Any]:
    tok = trace.get("tokens") or {}
    t_in, t_out = int(tok.get("input", 0)), int(tok.get("output", 0))
    t_cr, t_cw = int(tok.get("cache_read", 0)), int(tok.get("cache_write", 0))
    conf = trace.get("confidence")
    return {
        "run_id": trace["run_id"],
        "kind": trace.get("kind", ""),
        "name": trace.get("name", ""),
        "status": trace.get("status", "running"),
        "started_at": float(trace.get("started_at") or now),
        "finished_at": trace.get("finished_at"),
        "updated_at": now,
        "complete": int(bool(trace.get("complete"))),
        "confidence": None if conf is None else float(conf),
        "min_confidence": trace.get("min_confidence"),
        "meets_threshold": int(bool(trace.get("meets_threshold"))),
        "stop_reason": trace.get("stop_reason"),
        "provider": trace.get("provider") or "",
        "model": trace.get("model") or "",
        "inputs": json.dumps(trace.get("inputs") or {}, ensure_ascii=False),
        "answer": trace.get("answer") or "",
        "tokens_input": t_in,
        "tokens_output": t_out,
        "tokens_cache_read": t_cr,
        "tokens_cache_write": t_cw,
        "tokens_total": t_in + t_out + t_cr + t_cw,
        "cost_usd": float(trace.get("cost_usd") or 0.0),
        "duration_ms": float(trace.get("duration_ms") or 0.0),
    }


def _summary_from_row(row: sqlite3.Row) -> dict[str, Any]:
    d = {k: row[k] for k in _ROW_FIELDS}
    d["inputs"] = json.loads(d["inputs"] or "{}")
    d["complete"] = bool(d["complete"])
    d["meets_threshold"] = bool(d["meets_threshold"])
    d["tokens"] = {
        "input": d.pop("tokens_input"),
        "output": d.pop("tokens_output"),
        "cache_read": d.pop("tokens_cache_read"),
        "cache_write": d.pop("tokens_cache_write"),
    }
    return d


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


# --------------------------------------------------------------------------- the store
class RunStore:
    """Runs and their traces in one SQLite file. Safe to share between threads and processes."""

    #: Rows owned by another host (whose processes we cannot see) are marked interrupted only when
    #: they have not been updated for this long.
    foreign_stale_secs: float = 6 * 3600
    #: Attempts for a write that keeps hitting "database is locked" after busy_timeout.
    write_attempts: int = 8
    #: Idle connections kept open. Each operation takes one for its thread and gives it back, so
    #: threads never share a connection and short-lived worker threads do not leak any. (Keeping one
    #: open also spares every write the checkpoint SQLite runs when a WAL database's last connection
    #: closes.)
    pool_size: int = 4

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []  # open connections no thread is using
        self._pid = os.getpid()  # the process the pooled connections belong to
        self._generation = 0  # bumped by close(): connections from before are closed on release
        self._owner = _owner()
        self._init_schema()

    @classmethod
    def for_settings(cls, settings: Any) -> RunStore:
        return cls(Path(settings.data_dir()) / "runs.db")

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False because a
        # pooled connection moves between threads (never used by two at once).
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = NORMAL")
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
                _FORK_LEFTOVERS.extend(self._idle)
                self._idle, self._pid = [], os.getpid()
            gen = self._generation
            if self._idle:
                return self._idle.pop(), gen
        return self._connect(), gen

    def _release(self, conn: sqlite3.Connection, gen: int) -> None:
        with self._lock:
            keep = gen == self._generation and self._pid == os.getpid() and not conn.in_transaction
            if keep and len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        try:
            conn.close()
        except sqlite3.Error:  # pragma: no cover
            pass

    def close(self) -> None:
        """Close the open connections (one still in use is closed when its operation ends). The store
        reopens lazily if it is used again."""
        with self._lock:
            idle = self._idle if self._pid == os.getpid() else []
            self._idle = []
            self._generation += 1
        for c in idle:
            try:
                c.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def _retry(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run fn with a connection; retry (with backoff) while the database stays locked."""
        delay = 0.02
        for attempt in range(self.write_attempts):
            conn, gen = self._acquire()
            try:
                return fn(conn)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == self.write_attempts - 1:
                    raise
                log.debug("run store busy (%s), retrying", exc)
            finally:
                self._release(conn, gen)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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
                    f"{self.path} was written by a newer ReasonKit (schema {version}, this version knows {SCHEMA_VERSION}); upgrade ReasonKit or use another --data-dir"
                )
            with self._write(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
                for v in range(version + 1, SCHEMA_VERSION + 1):
                    # statement by statement: executescript() would COMMIT our transaction
                    for stmt in _MIGRATIONS[v].split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        try:
            self._retry(init)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise
            raise StoreError(f"{self.path} cannot be used as a ReasonKit run database: {exc}") from exc

    # ----------------------------------------------------------------- writes
    def start(self, result: RunResult) -> None:
        """Record a run as `running`, owned by this process."""
        self._start_trace(result.trace())

    def save(self, result: RunResult) -> None:
        """Insert or update a run with its full trace, in one transaction."""
        self._save_trace(result.trace())

    def _start_trace(self, trace: dict[str, Any]) -> None:
        row = _row_from_trace(trace, time.time())
        row["status"] = "running"
        host, pid, start = self._owner if self._owner[1] == os.getpid() else _owner()
        row.update(
            owner_host=host, owner_pid=pid, owner_start=start, trace=json.dumps(trace, ensure_ascii=False)
        )
        cols = list(row)
        sql = (
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols if c != 'run_id')}"
        )

        def op(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                conn.execute(sql, [row[c] for c in cols])

        self._retry(op)

    def _save_trace(self, trace: dict[str, Any], text: str | None = None) -> None:
        row = _row_from_trace(trace, time.time())
        host, pid, start = self._owner if self._owner[1] == os.getpid() else _owner()
        row.update(owner_host=host, owner_pid=pid, owner_start=start)
        row["trace"] = text if text is not None else json.dumps(trace, ensure_ascii=False)
        cols = list(row)
        sql = (
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _SAVE_FIELDS)}"
        )

        def op(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                conn.execute(sql, [row[c] for c in cols])

        self._retry(op)

    def mark_interrupted(self) -> int:
        """Mark `running` rows whose owning process is gone as `interrupted` (their trace too).
        Rows owned by a live process on this host are left alone: other workers share the file.
        Rows from another host are marked only when not updated for `foreign_stale_secs`."""
        host = _hostname()
        me = os.getpid()

        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT run_id, owner_host, owner_pid, owner_start, updated_at FROM runs WHERE status = 'running'"
            ).fetchall()
            now = time.time()
            dead = []
            for r in rows:
                if r["owner_host"] == host:
                    pid = r["owner_pid"] or 0
                    if pid == me and (not self._owner[2] or r["owner_start"] in ("", self._owner[2])):
                        continue
                    if _pid_alive(pid, r["owner_start"]):
                        continue
                elif now - (r["updated_at"] or 0) < self.foreign_stale_secs:
                    continue
                dead.append(r["run_id"])
            if not dead:
                return 0
            n = 0
            with self._write(conn):
                for run_id in dead:
                    cur = conn.execute(
                        "SELECT trace, owner_host, owner_pid FROM runs WHERE run_id = ? AND status = 'running'",
                        (run_id,),
                    ).fetchone()
                    if cur is None:  # finished or marked meanwhile
                        continue
                    reason = f"interrupted: the process that ran it ({cur['owner_host']} pid {cur['owner_pid']}) ended before the run finished"
                    trace_text = cur["trace"]
                    try:
                        trace = json.loads(trace_text) if trace_text else None
                    except ValueError:
                        trace = None
                    if isinstance(trace, dict):
                        trace["status"] = "interrupted"
                        trace["complete"] = False
                        trace["stop_reason"] = trace.get("stop_reason") or reason
                        trace_text = json.dumps(trace, ensure_ascii=False)
                    conn.execute(
                        "UPDATE runs SET status = 'interrupted', complete = 0, stop_reason = COALESCE(stop_reason, ?), updated_at = ?, trace = ? WHERE run_id = ?",
                        (reason, now, trace_text, run_id),
                    )
                    n += 1
            return n

        n = self._retry(op)
        if n:
            log.warning(
                "run store: %d run(s) left running by a process that ended were marked interrupted", n
            )
        return n

    def prune(self, max_age_days: float | None = None, max_count: int | None = None) -> int:
        """Delete finished runs started more than `max_age_days` ago and/or all but the newest
        `max_count` finished runs. Running runs are never deleted. Returns how many were deleted."""
        if max_age_days is None and max_count is None:
            return 0
        if max_age_days is not None and max_age_days < 0:
            raise ValueError("max_age_days must be >= 0")
        if max_count is not None and max_count < 0:
            raise ValueError("max_count must be >= 0")

        def op(conn: sqlite3.Connection) -> int:
            n = 0
            with self._write(conn):
                if max_age_days is not None:
                    cutoff = time.time() - max_age_days * 86400
                    n += conn.execute(
                        "DELETE FROM runs WHERE status != 'running' AND started_at < ?", (cutoff,)
                    ).rowcount
                if max_count is not None:
                    n += conn.execute(
                        "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE status != 'running' "
                        "ORDER BY started_at DESC, run_id DESC LIMIT -1 OFFSET ?)",
                        (max_count,),
                    ).rowcount
            return n

        n = self._retry(op)
        if n:
            try:
                self._retry(
                    lambda c: c.executescript("PRAGMA incremental_vacuum;")
                )  # execute() frees one page only
            except sqlite3.OperationalError as exc:  # best effort: the space is reused anyway
                log.debug("incremental_vacuum skipped: %s", exc)
        return n

    # ----------------------------------------------------------------- reads
    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self._retry(
            lambda c: c.execute("SELECT trace FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        )
        if row is None or row["trace"] is None:
            return None
        return json.loads(row["trace"])

    def summary(self, run_id: str) -> dict[str, Any] | None:
        row = self._retry(
            lambda c: c.execute(
                f"SELECT {', '.join(_ROW_FIELDS)} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        )
        return None if row is None else _summary_from_row(row)

    def list(
        self, limit: int = 50, status: str | None = None, kind_or_name: str | None = None
    ) -> list[dict[str, Any]]:
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status:
            where.append("status = ?")
            args.append(status)
        if kind_or_name:
            where.append("(kind = ? OR name = ?)")
            args += [kind_or_name, kind_or_name]
        sql = f"SELECT {', '.join(_LIST_FIELDS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        args.append(int(limit) if limit is not None and limit > 0 else -1)
        rows = self._retry(lambda c: c.execute(sql, args).fetchall())
        out = []
        for r in rows:
            d = {k: r[k] for k in _LIST_FIELDS}
            d["meets_threshold"] = bool(d["meets_threshold"])
            out.append(d)
        return out

    def resolve(self, prefix: str, limit: int = 10) -> builtins.list[str]:
        """Run ids equal to `prefix`, else those starting with it (at most `limit`)."""
        if not prefix:
            return []
        exact = self._retry(
            lambda c: c.execute("SELECT run_id FROM runs WHERE run_id = ?", (prefix,)).fetchone()
        )
        if exact is not None:
            return [exact["run_id"]]
        rows = self._retry(
            lambda c: c.execute(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started_at DESC LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        )
        return [r["run_id"] for r in rows]

    def count(self) -> int:
        return self._retry(lambda c: c.execute("SELECT count(*) FROM runs").fetchone()[0])

    def integrity_check(self) -> str:
        """'ok', or SQLite's description of what is wrong."""
        rows = self._retry(lambda c: c.execute("PRAGMA integrity_check").fetchall())
        return "\n".join(str(r[0]) for r in rows)


# --------------------------------------------------------------------------- recorder
SAVE_EVENTS = frozenset({"step_finished", "entry_finished", "entry_skipped", "run_finished"})


class RunRecorder:
    """Saves a run as it progresses: pass `recorder.on_event` as the engine's on_event (it can wrap/forward to another callback given in the constructor).

    The trace is serialised in the event-loop thread (a consistent snapshot: the engine mutates the
    result only in that thread) and written in a worker thread. Saves are ordered and coalesced: when
    several steps finish while a write is in flight, the next write carries all of them. A store
    failure is logged and never breaks the run; `finish()` makes the final save synchronously.
    """

    def __init__(self, store: RunStore, result: RunResult, forward: Callable[[Any], Any] | None = None):
        self.store = store
        self.result = result
        self.forward = forward
        self.saves = 0  # writes actually made (for tests and metrics)
        self.errors = 0
        self.run_started = False  # the engine announced the run (inputs were valid)
        self._requested = 0
        self._saved = 0
        self._started = False
        self._finished = False
        self._final_written = False
        self._lock: Any = None  # anyio.Lock, made on first use (inside the event loop)
        self._wlock = threading.Lock()  # orders worker-thread writes against finish()

    async def on_event(self, event: Any) -> None:
        etype = getattr(event, "type", None)
        if etype == "run_started":
            self.run_started = True
        if not self._finished and (etype == "run_started" or etype in SAVE_EVENTS):
            await self._record(start=etype == "run_started" and not self._started)
        if self.forward is not None:
            r = self.forward(event)
            if inspect.isawaitable(r):
                await r

    async def _record(self, start: bool) -> None:
        import anyio

        if self._lock is None:
            self._lock = anyio.Lock()
        self._requested += 1
        mine = self._requested
        async with self._lock:
            if self._finished or (self._saved >= mine and not start):
                return  # a later snapshot already went out
            gen = self._requested
            try:
                trace = self.result.trace()
                written = await anyio.to_thread.run_sync(self._write_snapshot, start, trace)
            except Exception as exc:  # noqa: BLE001 - recording must never break the run
                self.errors += 1
                log.warning(
                    "run %s: could not save to the run store %s: %s", self.result.run_id, self.store.path, exc
                )
                return
            self._started = self._started or start
            self._saved = gen
            self.saves += int(written)

    def _write_snapshot(self, start: bool, trace: dict[str, Any]) -> bool:
        with self._wlock:
            if self._final_written:  # finish() already wrote the final state: never overwrite it
                return False
            (self.store._start_trace if start else self.store._save_trace)(trace)
            return True

    def finish(self, result: RunResult | None = None) -> None:
        """The final save (synchronous). Also after cancellation (status is then "cancelled"). A result
        still marked "running" here means the engine raised: it is stored as "failed". A run the engine
        never started (it rejected the inputs: no run_started event, status still "running") is not
        stored, unless the caller had already recorded it with store.start()."""
        res = result if result is not None else self.result
        self._finished = True
        if not self.run_started and res.status == "running":
            try:
                if self.store.summary(res.run_id) is None:
                    return  # the engine rejected the inputs before starting: nothing to record
            except Exception:  # noqa: BLE001 - fall through to the save, which reports the problem
                pass
        trace = res.trace()
        if trace.get("status") == "running":
            trace["status"] = "failed"
            trace["complete"] = False
            trace["stop_reason"] = (
                trace.get("stop_reason") or "the run ended without a final status (internal error)"
            )
            if trace.get("finished_at") is None:
                trace["finished_at"] = time.time()
        try:
            with self._wlock:  # waits for a write in flight, so the final state is written last
                self.store._save_trace(trace)
                self._final_written = True
            self.saves += 1
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            log.error("run %s: final save to the run store %s failed: %s", res.run_id, self.store.path, exc)
