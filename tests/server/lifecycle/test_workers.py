"""Several processes (issue 12, point 6): `[server] workers = 2` serves one port from two worker
processes under a supervisor; `/metrics` adds up both (prometheus-client multiprocess mode);
`run_result` finds a background run through the shared run store whatever worker answers; SIGTERM
stops the workers and the supervisor with status 0."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, answer, call, metric
from tests.server.procs import HttpServer

CALLS = 6
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads worker processes from /proc (Linux)")


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(t) for t in text)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def fresh() -> httpx.Client:
    """One connection per request, so the kernel may hand each to either worker."""
    return httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def test_two_workers_serve_one_port_and_metrics_add_up(server_env, fake_llm):
    fake_llm.default = routed({"JOIN": (None, 0.5)})
    cfg = Path(server_env["REASONKIT_CONFIG"])
    cfg.write_text(cfg.read_text() + "workers = 2\n")
    srv = HttpServer({**server_env, "LOG_LEVEL": "info"})
    try:
        deadline = time.monotonic() + 20
        with fresh() as http:
            while True:  # both workers are up and counted, whichever one answers
                body = http.get(f"{srv.url}/metrics").text
                if metric(body, "reasonkit_server_workers") == 2:
                    break
                assert time.monotonic() < deadline, body[-2000:]
                time.sleep(0.1)
            workers = children(srv.proc.pid)
            assert len(workers) == 2, workers
            for i in range(CALLS):
                r = http.post(f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": f"q{i}"}))
                assert answer(r)["result"]["structuredContent"]["status"] == "complete"
            for port in (srv.port, srv.metrics_port):  # every worker's /metrics shows the sum
                for _ in range(4):
                    body = http.get(f"http://127.0.0.1:{port}/metrics").text
                    done = 'reasonkit_requests_total{method="tiny",profile="tiny",status="complete"}'
                    assert metric(body, done) == CALLS, body[-2000:]
                    assert metric(body, "reasonkit_server_workers") == 2
            # a background run, then run_result over fresh connections until it is finished
            started = answer(
                http.post(
                    f"{srv.url}/mcp",
                    headers=MCP_HEADERS,
                    json=call("tiny", {"query": "bg", "background": True}),
                )
            )["result"]["structuredContent"]
            run_id = started["run_id"]
            deadline = time.monotonic() + 20
            while True:
                r = http.post(
                    f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("run_result", {"run_id": run_id})
                )
                result = answer(r)["result"]
                assert not result.get("isError"), result
                if result["structuredContent"]["status"] == "complete":
                    break
                assert time.monotonic() < deadline, result
                time.sleep(0.2)
    finally:
        code = srv.stop()
    assert code == 0, srv.log()[-3000:] if not srv.stderr.closed else ""
    assert not any(alive(pid) for pid in workers)
    log = Path(srv.stderr.name).read_text()
    assert "supervising 2 worker processes" in log
    assert "Traceback" not in log, log[-3000:]


def test_workers_die_with_a_killed_supervisor(server_env, fake_llm):
    """Issue 23, hole 6: `kill -9` of the supervisor used to orphan its workers, which kept serving
    and held the port, so a restart failed. Now they stop, and the port can be bound again."""
    import os
    import signal
    import socket

    cfg = Path(server_env["REASONKIT_CONFIG"])
    cfg.write_text(cfg.read_text() + "workers = 2\n")
    srv = HttpServer({**server_env, "LOG_LEVEL": "info"})
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 20
        with fresh() as http:
            while metric(http.get(f"{srv.url}/metrics").text, "reasonkit_server_workers") != 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        workers = children(srv.proc.pid)
        assert len(workers) == 2, workers
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)
        with socket.socket() as sock:  # the port is free for a restart
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", srv.port))
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        srv.stop()
