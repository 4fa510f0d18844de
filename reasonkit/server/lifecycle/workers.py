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

What the workers share: the port, the run store (SQLite in WAL mode, or PostgreSQL), so `run_result`
finds a background run whatever worker started it, and Redis when configured. What each has alone:
its admission gate and connection limits (`[server] max_*` are per process), its rate-limit buckets
and its in-memory response cache (shared only through Redis).
"""

from __future__ import annotations

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


def supervise(n: int, main: socket.socket, side: socket.socket | None, host: str, port: int) -> int:
    """Run `n` workers on the bound sockets until a signal stops them; the exit status."""
    metrics_dir = tempfile.mkdtemp(prefix="reasonkit-metrics-")
    for sock in (main, side):
        if sock is not None:
            sock.set_inheritable(True)
    signals: list[int] = []
    for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(handled, lambda signum, _frame: signals.append(signum))
    workers = _Workers(main, side, {**os.environ, MULTIPROC_ENV: metrics_dir})
    try:
        for _ in range(n):
            workers.spawn()
        logger.info(
            "supervising {} worker processes on http://{}:{}/mcp (pids {})",
            n,
            host,
            port,
            list(workers.procs),
        )
        while workers.procs:
            while signals:
                workers.forward(signals.pop(0))
            workers.reap(metrics_dir)
            workers.kill_late()
            time.sleep(0.1)
        logger.info("all workers stopped")
        return workers.status
    finally:
        for proc, _ in workers.procs.values():
            proc.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Workers:
    """The supervisor's workers (pid -> process and start time) and its state: `stopping` once a
    signal or a crash at start-up stopped the server (the workers then get until `stop_by`), and
    the exit `status`."""

    def __init__(self, main: socket.socket, side: socket.socket | None, env: dict[str, str]):
        self.main, self.side, self.env = main, side, env
        self.procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self.stopping = False
        self.stop_by = 0.0
        self.status = 0

    def spawn(self) -> None:
        proc = _spawn(self.main, self.side, self.env)
        self.procs[proc.pid] = (proc, time.monotonic())

    def forward(self, sig: int) -> None:
        """SIGHUP: every worker reloads. SIGTERM / SIGINT: every worker drains (SIGTERM)."""
        if sig == signal.SIGHUP:
            logger.info("received SIGHUP: the workers reload")
        else:
            if self.stopping:
                logger.warning("received {} again: the workers stop now", signal.Signals(sig).name)
            self._stop()
            sig = signal.SIGTERM
        for proc, _ in self.procs.values():
            _send(proc, sig)

    def _stop(self) -> None:
        self.stopping = True
        self.stop_by = time.monotonic() + STOP_WAIT_SECS

    def reap(self, metrics_dir: str) -> None:
        """Forget the workers that exited; replace each, unless the server is stopping or the worker
        died at start-up (a configuration problem: then the whole server stops with status 1)."""
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
                self.status = 1
                self._stop()
                for other, _ in self.procs.values():
                    _send(other, signal.SIGTERM)
                continue
            logger.error("worker {} exited (status {}): starting another", pid, code)
            self.spawn()

    def kill_late(self) -> None:
        """Kill the workers still running `STOP_WAIT_SECS` after the stop."""
        if self.stopping and self.procs and time.monotonic() > self.stop_by:
            for proc, _ in self.procs.values():
                proc.kill()


def _send(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
