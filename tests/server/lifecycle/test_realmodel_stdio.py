"""Real-model tier: `rk serve-mcp` over stdio with NO provider configured (HOME in a temp dir) picks
the in-process local model (zero configuration) and answers initialize, tools/list and a
tools/call of `laserlogic` through the MCP SDK's stdio client."""

from __future__ import annotations

import os

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.server.procs import rk_command

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'")

pytestmark = [pytest.mark.anyio, pytest.mark.realmodel, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
def only_when_selected(request: pytest.FixtureRequest) -> None:
    """Minutes of work: runs only with `-m realmodel`, never in a plain `pytest` run."""
    if "realmodel" not in (request.config.option.markexpr or ""):
        pytest.skip("real-model tier: select it with -m realmodel")


async def test_stdio_server_runs_laserlogic_on_the_local_model(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    params = StdioServerParameters(command=rk_command()[0], args=[*rk_command()[1:], "serve-mcp"], env=env)
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"gigathink", "laserlogic", "bedrock", "proofguard", "brutalhonesty", "think"} <= names
            argument = "All cats are mammals. Tom is a mammal. Therefore Tom is a cat."
            result = await client.call_tool("laserlogic", {"argument": argument})
    stderr = errlog_path.read_text()
    assert not result.is_error, (result.content, stderr[-3000:])
    content = result.structured_content
    assert content is not None, stderr[-3000:]
    assert content["status"] in ("complete", "incomplete"), content
    assert 0.0 <= content["confidence"] <= 1.0
    assert content["run_id"]
    assert content["provider"] == "local", content  # chosen with nothing configured


async def test_the_quickest_tool_with_default_arguments_completes_on_the_local_model(tmp_path):
    """Issue 24: the default deadline fits the embedded model (its estimate with margin), so a call
    with default arguments comes back complete instead of cut at a hosted model's 50 s."""
    from reasonkit.protocol.loader import load_registry
    from reasonkit.server.mcp.estimates import protocol_estimate

    builtin = load_registry([], include_builtin=True).protocols
    quickest = min(builtin.values(), key=lambda p: (protocol_estimate(p).calls_max, p.id))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    params = StdioServerParameters(command=rk_command()[0], args=[*rk_command()[1:], "serve-mcp"], env=env)
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tool = next(t for t in (await client.list_tools()).tools if t.name == quickest.id)
            assert "on the embedded model, one call at a time" in (tool.description or "")
            required = [name for name, spec in quickest.inputs.items() if spec.required]
            args = {
                name: "All cats are mammals. Tom is a mammal. Therefore Tom is a cat." for name in required
            }
            result = await client.call_tool(quickest.id, args)
    stderr = errlog_path.read_text()
    content = result.structured_content
    assert content is not None and not result.is_error, (result.content, stderr[-3000:])
    assert content["provider"] == "local", content
    steps = [(s["step_id"], s["status"], s["duration_ms"]) for s in content.get("steps", [])]
    assert content["status"] == "complete" and content["complete"] is True, (
        content.get("stop_reason"),
        steps,
    )
