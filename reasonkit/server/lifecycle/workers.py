"""`[server] workers` > 1: one port served by several processes.

The process started as `rk serve-mcp` becomes a supervisor: it binds the port (and the metrics
port), then starts `workers` copies of its own command line that inherit the listening sockets
(their numbers in `REASONKIT_WORKER_FD` / `REASONKIT_WORKER_SIDE_FD`); the kernel hands each new
connection to one of them. The supervisor serves nothing itself. It

- points `PROMETHEUS_MULTIPROC_DIR` at a private temporary folder, so each worker's `/metrics` is the
  sum over all workers (prometheus-client's multiprocess mode), and removes it at the end;
- forwards SIGTERM/SIGINT (each worker drains: see serve.py) and SIGHUP (reload) to every worker;
- restarts a worker that dies (a worker that dies within `CRASH_LOOP_SECS` of its start stops the
  whole server with exit status 1: a configuration or start-up problem, not a crash).

A supervisor killed outright (SIGKILL, OOM) takes its workers with it: each worker asks the kernel
for SIGTERM on its parent's death (`die_with_parent`), drains and exits, so the port is free for a
restart.

What the workers share: the port, the run store (SQLite in WAL mode, or PostgreSQL), so `run_result`
finds a background run whatever worker started it, and Redis when configured. What each has alone:
its admission gate and connection limits (`[server] max_*` are per process), its rate-limit buckets
and its in-memory response cache (shared only through Redis).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from loguru import logger

from reasonkit.observability.metrics import MULTIPROC_ENV

MAIN_FD_ENV = "REASONKIT_WORKER_FD"
SIDE_FD_ENV = "REASONKIT_WORKER_SIDE_FD"
SUPERVISOR_ENV = "REASONKIT_SUPERVISOR_PID"  # the supervisor's pid, for die_with_parent
PR_SET_PDEATHSIG = 1  # linux/prctl.h
CRASH_LOOP_SECS = 5.0
STOP_WAIT_SECS = 120.0


def inherited_socket(env: str) -> socket.socket | None:
    """In a worker: the listening socket the supervisor passed down (None elsewhere)."""
    fd = os.environ.get(env)
    if not fd:
        return None
    sock = socket.socket(fileno=int(fd))
    sock.set_inheritable(False)
    return sock


def _spawn(main: socket.socket, side: socket.socket | None, env: dict[str, str]) -> subprocess.Popen[bytes]:
    fds = [main.fileno(), *([side.fileno()] if side is not None else [])]
    child_env = {**env, MAIN_FD_ENV: str(main.fileno())}
    if side is not None:
        child_env[SIDE_FD_ENV] = str(side.fileno())
    # Its own process group: a Ctrl-C in the terminal reaches the supervisor only, which forwards
    # one SIGTERM (a second signal would make the worker stop at once).
    return subprocess.Popen(list(sys.orig_argv), env=child_env, pass_fds=fds, start_new_session=True)


def die_with_parent() -> None:
    """In a worker: stop when the supervisor dies, even by SIGKILL, so no orphan keeps serving and
    holding the port (a restart could not bind it). Linux: the kernel sends SIGTERM on the parent's
    death (prctl PR_SET_PDEATHSIG; the worker drains as for any SIGTERM). A supervisor that died
    before this call is caught by comparing the parent pid with the one the supervisor passed down."""
    expected = os.environ.get(SUPERVISOR_ENV)
    if not expected:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if str(os.getppid()) != expected:
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(n: int, main: socket.socket, side: socket.socket | None, host: str, port: int) -> int:
    """Run `n` workers on the bound sockets until a signal stops them; the exit status."""
    metrics_dir = tempfile.mkdtemp(prefix="reasonkit-metrics-")
    for sock in (main, side):
        if sock is not None:
            sock.set_inheritable(True)
    sup = _Supervisor(
        main, side, {**os.environ, MULTIPROC_ENV: metrics_dir, SUPERVISOR_ENV: str(os.getpid())}
    )
    for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(handled, lambda signum, _frame: sup.signals.append(signum))
    try:
        for _ in range(n):
            sup.spawn()
        logger.info(
            "supervising {} worker processes on http://{}:{}/mcp (pids {})", n, host, port, list(sup.procs)
        )
        while sup.procs:
            sup.forward_signals()
            sup.reap(metrics_dir)
            sup.kill_if_overdue()
            time.sleep(0.1)
        logger.info("all workers stopped")
        return sup.status
    finally:
        for proc, _ in sup.procs.values():
            proc.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Supervisor:
    """The workers (pid -> process and start time) and the stop state; one loop turn at a time."""

    def __init__(self, main: socket.socket, side: socket.socket | None, env: dict[str, str]):
        self.main, self.side, self.env = main, side, env
        self.procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self.signals: list[int] = []
        self.status = 0
        self.stopping = False
        self.stop_by = 0.0

    def spawn(self) -> None:
        proc = _spawn(self.main, self.side, self.env)
        self.procs[proc.pid] = (proc, time.monotonic())

    def stop(self, status: int | None = None) -> None:
        """Start stopping: every worker gets SIGTERM, and `STOP_WAIT_SECS` to drain."""
        if status is not None:
            self.status = status
        self.stopping = True
        self.stop_by = time.monotonic() + STOP_WAIT_SECS

    def forward_signals(self) -> None:
        while self.signals:
            sig: int = self.signals.pop(0)
            if sig == signal.SIGHUP:
                logger.info("received SIGHUP: the workers reload")
            else:
                if self.stopping:
                    logger.warning("received {} again: the workers stop now", signal.Signals(sig).name)
                self.stop()
                sig = signal.SIGTERM
            for proc, _ in self.procs.values():
                _send(proc, sig)

    def reap(self, metrics_dir: str) -> None:
        """Forget workers that exited; restart one that crashed, or stop all on a crash at start-up."""
        from prometheus_client import multiprocess

        for pid, (proc, started) in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[pid]
            multiprocess.mark_process_dead(pid, metrics_dir)
            if self.stopping:
                continue
            if time.monotonic() - started < CRASH_LOOP_SECS:
                logger.error("worker {} exited at start-up (status {}): stopping the server", pid, code)
                self.stop(status=1)
                for other, _ in self.procs.values():
                    _send(other, signal.SIGTERM)
                continue
            logger.error("worker {} exited (status {}): starting another", pid, code)
            self.spawn()

    def kill_if_overdue(self) -> None:
        if self.stopping and self.procs and time.monotonic() > self.stop_by:
            for proc, _ in self.procs.values():
                proc.kill()


def _send(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
