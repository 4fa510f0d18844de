"""Issue 24 point 6: a client we did not write drives ReasonKit's tasks end to end over HTTP. The
`fastmcp` client with `fastmcp-tasks` (SEP-2663 on the 2026-07-28 wire) starts a `think` run on
replica A with a 1 s request timeout; the run takes several seconds, comes back as a task, and is
polled to its result through replica B (the two share one SQLite run store). A second run started
on A is cancelled through B and ends cancelled.

fastmcp 4.2.3 is the newest fastmcp, but its task client lives in `fastmcp-tasks`, whose newest
release (4.1.8) pins fastmcp 4.1.8: the dev extra installs that pair (beside mcp 2.3.0, no conflict)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.programs import skip_or_fail
from tests.server.conftest import routed
from tests.server.lifecycle.test_task_replicas import _env
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio
TIMEOUT_S = 1.0  # the client's own request timeout


async def test_fastmcp_polls_a_task_past_its_timeout_and_cancels_one_on_another_replica(
    tmp_path: Path, proto_dir: Path, fake_llm: Any
) -> None:
    try:
        import fastmcp
        from fastmcp_tasks import ToolTask, call_tool_task
    except ImportError:
        skip_or_fail("NOT TESTED: fastmcp-tasks is not installed (the dev extra installs it)")
    # every model call takes 0.5 s: the `pair` profile's run takes several seconds, its estimate
    # (75 s on a hosted model) makes the call a task; a "slow" query's list step takes 2 minutes
    fake_llm.default = routed({"LIST <query>slow": (None, 120.0)}, delay=0.5)
    a, b = await anyio.to_thread.run_sync(lambda: _replicas(tmp_path, proto_dir, fake_llm))
    try:
        async with (
            fastmcp.Client(f"{a.url}/mcp", timeout=TIMEOUT_S) as on_a,
            fastmcp.Client(f"{b.url}/mcp", timeout=TIMEOUT_S) as on_b,
        ):
            for client in (on_a, on_b):  # the first call imports the engine: not what is timed here
                await client.call_tool("tiny", {"query": "warm up"}, timeout=60)
            started = time.monotonic()
            handle = await call_tool_task(on_a, "think", {"query": "fast"})
            result = await ToolTask(on_b, "think", handle.create_result).result()
            took = time.monotonic() - started
            assert took > 2 * TIMEOUT_S, took  # it outlived the client's request timeout
            assert result.structured_content is not None
            assert result.structured_content["status"] == "complete", result.structured_content

            slow = await call_tool_task(on_a, "think", {"query": "slow"})
            await anyio.sleep(1.0)  # its first steps are done; the 2-minute one is in flight
            await ToolTask(on_b, "think", slow.create_result).cancel()
            final = await slow.wait(timeout=15)
            assert final.status == "cancelled", final
    finally:
        for server in (a, b):
            server.stop()


def _replicas(tmp_path: Path, proto_dir: Path, fake_llm: Any) -> tuple[HttpServer, HttpServer]:
    a = HttpServer(_env(tmp_path, proto_dir, fake_llm, None, "a"))
    try:
        return a, HttpServer(_env(tmp_path, proto_dir, fake_llm, None, "b"))
    except BaseException:
        a.stop()
        raise
