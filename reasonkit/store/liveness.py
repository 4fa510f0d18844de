"""Who owns a stored run, and is that process still alive?

A run row records its owner: host name, process id and the process start time (clock ticks since
boot, from /proc where there is one). The start time tells a live owner from a process that merely
got the same pid later (a container restarted, where the server is pid 1 again).

Replicas that share a PostgreSQL store cannot see each other's processes: there a running run also
holds a lease (`lease_until`), which its replica's `Heartbeat` renews; a run whose lease expired is
marked interrupted by any replica (reasonkit.store.postgres).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("reasonkit.store")


@dataclass(frozen=True)
class Owner:
    """The process a run row belongs to. `start` is "" where the start time is unknown."""

    host: str
    pid: int
    start: str


def proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc, or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: fields follow the last ")"
    fields = data[data.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


def hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return ""


_CURRENT: Owner | None = None


def current_owner() -> Owner:
    """This process as an owner (computed once per process: a forked child gets its own)."""
    global _CURRENT
    pid = os.getpid()
    if _CURRENT is None or _CURRENT.pid != pid:
        stat = proc_stat(pid)
        _CURRENT = Owner(hostname(), pid, stat[1] if stat else "")
    return _CURRENT


def process_alive(pid: int, start: str) -> bool:
    """Is process `pid` (started at `start`, "" if unknown) still running on this host? A reused pid
    (a different start time) or a zombie counts as gone."""
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
    stat = proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False
    return not (start and started != start)


def owner_gone(owner: Owner, updated_at: float, now: float, foreign_stale_secs: float) -> bool:
    """Has the owner of a `running` row ended without finishing it?

    On this host: the owner is gone when its process is (this process's own rows are alive unless the
    row's start time says an earlier process had our pid). On another host, whose processes cannot be
    seen from here: when the row has not been updated for `foreign_stale_secs`."""
    me = current_owner()
    if owner.host != me.host:
        return now - updated_at >= foreign_stale_secs
    if owner.pid == me.pid and (not me.start or owner.start in ("", me.start)):
        return False
    return not process_alive(owner.pid, owner.start)


def replica_id() -> str:
    """This process as one string (host, pid, start time): the owner of its runs in a shared store."""
    me = current_owner()
    return f"{me.host}:{me.pid}:{me.start}"


class Heartbeat:
    """Calls `beat()` every `interval` seconds in a daemon thread until `stop()`: a replica that shares
    a database renews the leases of its running runs this way (see reasonkit.store.postgres). A beat
    that raises is logged and the next one tried; the thread never dies of it."""

    def __init__(self, beat: Callable[[], object], interval: float, name: str = "reasonkit store heartbeat"):
        self.beat = beat
        self.interval = interval
        self.beats = 0  # beats that completed (for tests)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
                self.beats += 1
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the heartbeat
                log.warning("run store heartbeat failed (retrying in %.0fs): %s", self.interval, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
