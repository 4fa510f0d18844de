"""Issue 24 point 6: a client we did not write drives ReasonKit's tasks end to end over HTTP. The
`fastmcp` client with `fastmcp-tasks` (SEP-2663 on the 2026-07-28 wire) starts a `think` run on
replica A with a 1 s request timeout; the run takes several seconds, comes back as a task, and is
polled to its result through replica B (the two share one SQLite run store). A second run started
on A is cancelled through B and ends cancelled.

fastmcp 4.2.3 is the newest fastmcp, but its task client lives in `fastmcp-tasks`, whose newest
release (4.1.8) pins fastmcp 4.1.8: the dev extra installs that pair (beside mcp 2.3.0, no conflict)."""

from __future__ import annotations

import os
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


@pytest.mark.realmodel
@pytest.mark.timeout(900)
async def test_fastmcp_gets_a_complete_answer_on_the_embedded_model_through_a_task(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Issue 24 point 3 through a task: with nothing configured (the embedded model), a
    tasks-capable client's call of the quickest ThinkTool with default arguments (its estimate is
    minutes, one call at a time) becomes a task that runs to its estimate and comes back complete."""
    if "realmodel" not in (request.config.option.markexpr or ""):
        pytest.skip("real-model tier: select it with -m realmodel")
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'"
    )
    try:
        import fastmcp
        from fastmcp.client.transports import StdioTransport
        from fastmcp_tasks import call_tool_task
    except ImportError:
        skip_or_fail("NOT TESTED: fastmcp-tasks is not installed (the dev extra installs it)")
    from reasonkit.protocol.loader import load_registry
    from reasonkit.server.mcp.estimates import protocol_estimate
    from tests.server.procs import rk_command

    builtin = load_registry([], include_builtin=True).protocols
    quickest = min(builtin.values(), key=lambda p: (protocol_estimate(p).calls_max, p.id))
    argument = "A 4-day work week is good for a bakery because rested bakers make better bread."
    args = {name: argument for name, spec in quickest.inputs.items() if spec.required}

    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    command = rk_command()
    transport = StdioTransport(
        command[0], [*command[1:], "serve-mcp"], env=env, log_file=tmp_path / "err.log"
    )
    async with fastmcp.Client(transport, timeout=60) as client:
        task = await call_tool_task(client, quickest.id, args)
        result = await task.result()
    content = result.structured_content
    assert content is not None, (tmp_path / "err.log").read_text()[-3000:]
    assert content["provider"] == "local" and content["status"] == "complete", content
