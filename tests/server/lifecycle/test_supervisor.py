"""The worker supervisor's own decisions, with stand-in workers (short Python processes) instead of
`rk serve-mcp` copies: a worker that dies at start-up stops the server with status 1; one that dies
later is replaced; SIGTERM stops the workers and the supervisor with status 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from reasonkit.server.lifecycle import workers

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    saved = {s: signal.getsignal(s) for s in HANDLED}  # supervise installs its own handlers
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock
    for s, handler in saved.items():
        signal.signal(s, handler)


def _worker(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_worker_that_dies_at_start_up_stops_the_server(monkeypatch, listening):
    monkeypatch.setattr(workers, "_spawn", lambda main, side, env: _worker("raise SystemExit(3)"))
    assert workers.supervise(2, listening, None, "127.0.0.1", 1) == 1


def test_a_worker_that_dies_later_is_replaced_and_sigterm_stops_all(monkeypatch, listening):
    monkeypatch.setattr(workers, "CRASH_LOOP_SECS", 0.2)
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(
        main: socket.socket, side: socket.socket | None, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        # The first worker exits after the crash-loop window; the others wait to be stopped.
        proc = _worker("import time; time.sleep(0.6)" if not spawned else "import time; time.sleep(60)")
        spawned.append(proc)
        if len(spawned) == 3:  # the replacement is up: stop the server
            os.kill(os.getpid(), signal.SIGTERM)
        return proc

    monkeypatch.setattr(workers, "_spawn", spawn)
    assert workers.supervise(2, listening, None, "127.0.0.1", 1) == 0
    assert len(spawned) == 3 and all(p.poll() is not None for p in spawned)
