"""Drain to the end (issue 12, point 3): after SIGTERM new tool calls get 503 + Retry-After at once,
and when the grace period ends the runs still going return their partial results (as a deadline
does) instead of being cut off; they are stored `incomplete` with their partial confidence."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from reasonkit.store import SqliteRunStore
from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, answer, call, poll
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio


def short_grace(env: dict[str, str]) -> None:
    cfg = Path(env["REASONKIT_CONFIG"])
    cfg.write_text(cfg.read_text().replace("shutdown_grace_secs = 5", "shutdown_grace_secs = 1"))


async def test_sigterm_refuses_new_calls_and_returns_partial_results(server_env, fake_llm):
    fake_llm.default = routed({"JOIN": (None, 60.0)})  # the last step never answers in time
    short_grace(server_env)
    srv = HttpServer({**server_env, "LOG_LEVEL": "info"})
    got: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            started = answer(
                await http.post(
                    f"{srv.url}/mcp",
                    headers=MCP_HEADERS,
                    json=call("tiny", {"query": "bg", "background": True}, id=1),
                )
            )["result"]["structuredContent"]
            assert started["status"] == "running"

            async def in_flight() -> None:
                r = await http.post(
                    f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "fg"}, id=2)
                )
                got["status"], got["answer"] = r.status_code, answer(r)

            async with anyio.create_task_group() as tg:
                tg.start_soon(in_flight)
                # both runs are waiting for their JOIN step
                await poll(lambda: sum("JOIN" in str(req.body) for req in fake_llm.requests) >= 2)
                srv.proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(5):  # a new call is refused while the runs drain
                    while True:
                        refused = await http.post(
                            f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "new"}, id=3)
                        )
                        if refused.status_code == 503:
                            break
                        await anyio.sleep(0.05)
                assert int(refused.headers["retry-after"]) >= 1
                assert "shutting down" in refused.json()["error"]["message"]
        code = srv.proc.wait(timeout=20)
    finally:
        srv.stop()
    assert code == 0
    assert got["status"] == 200
    result = got["answer"]["result"]
    summary = result["structuredContent"]
    assert not result.get("isError"), result
    assert summary["status"] == "incomplete" and summary["complete"] is False, summary
    assert "shutting down" in result["content"][0]["text"]
    with SqliteRunStore(Path(server_env["REASONKIT_DATA_DIR"]) / "runs.db") as store:
        runs = store.list()
        assert sorted(r["status"] for r in runs) == ["incomplete", "incomplete"], runs
        assert all(r["confidence"] and r["confidence"] > 0 for r in runs), runs
