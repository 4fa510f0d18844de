"""A lean tool list: the 7 built-in tools fit in 14 KiB on the wire, no schema uses a type array
(`["number", "null"]`, which the MCP Inspector warns about), `[server] tools` exposes a subset (an
unknown name is a clear error listing the valid ones), and `think` states each profile's model calls
and time, computed from its protocols."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from reasonkit.config import load_settings
from reasonkit.errors import ConfigError
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.server.mcp.app import build_server
from tests.fakes.schemas import schema as out
from tests.programs import skip_or_fail
from tests.server.procs import rk_command

ROOT = Path(__file__).resolve().parents[3]  # tests/server/<room>/this file
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / ".bin"
# 12 KiB held until issue 24: each tool now also states its default deadline, its estimate's pace
# and how to run long (background + run_result), which took the list from 12,135 to 13,754 bytes.
LIMIT = 14 * 1024


def _stdio_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_DATA_DIR": str(home / "data"),
        "LOCAL_MODEL_AUTO": "false",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # never called: only the tool list is read
        "LLM_DEFAULT_PROVIDER": "openai",
    }


def _tools_list_line(env: dict[str, str], cwd: Path) -> bytes:
    """The raw `tools/list` response line of `rk serve-mcp` (built-in protocols only) over stdio."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    proc = subprocess.Popen(
        [*rk_command(), "serve-mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for msg in (init, {"jsonrpc": "2.0", "method": "notifications/initialized"}):
            proc.stdin.write((json.dumps(msg) + "\n").encode())
        proc.stdin.write(b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}\n')
        proc.stdin.flush()
        for line in iter(proc.stdout.readline, b""):  # EOF if the server dies: no endless wait
            if json.loads(line).get("id") == 2:
                return line.rstrip(b"\n")
        raise AssertionError("no tools/list answer")
    finally:
        proc.stdin.close()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
        proc.stdout.close()


def _type_arrays(node: Any, path: str = "") -> list[str]:
    """Paths of every `"type": [...]` in a JSON schema."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), list):
            found.append(path or "/")
        for key, value in node.items():
            found += _type_arrays(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _type_arrays(value, f"{path}/{i}")
    return found


def test_builtin_tool_list_fits_in_14_kib_without_type_arrays(tmp_path: Path) -> None:
    line = _tools_list_line(_stdio_env(tmp_path), tmp_path)
    tools = json.loads(line)["result"]["tools"]
    names = {t["name"] for t in tools}
    assert names == {
        "gigathink",
        "laserlogic",
        "bedrock",
        "proofguard",
        "brutalhonesty",
        "think",
        "run_result",
    }
    assert len(line) <= LIMIT, f"tools/list is {len(line)} bytes"
    for tool in tools:
        assert _type_arrays(tool["inputSchema"]) == [], tool["name"]
        assert _type_arrays(tool.get("outputSchema", {})) == [], tool["name"]
    # the output schema is the same everywhere and carries no prose
    schemas = {json.dumps(t["outputSchema"], sort_keys=True) for t in tools}
    assert len(schemas) == 1 and "description" not in schemas.pop()
    # the control inputs are explained once (run_result), not in every tool
    assert sum("idempotency_key" in t["description"] for t in tools) == 1


def test_the_inspector_reads_the_lean_list(tmp_path: Path) -> None:
    """A client we did not write lists the tools over stdio and gets the same lean list."""
    if not (NODE_BIN / "mcp-inspector").exists():
        skip_or_fail(
            f"NOT TESTED: the MCP Inspector is not installed in {NODE_BIN.parent.parent}; install with: "
            "mkdir -p tools/node && cd tools/node && npm i node@22 @modelcontextprotocol/inspector"
        )
    env = _stdio_env(tmp_path)
    env_args = [a for k, v in env.items() if k not in ("PATH", "HOME") for a in ("-e", f"{k}={v}")]
    node_env = {**env, "PATH": f"{NODE_BIN}{os.pathsep}{env['PATH']}", "NO_UPDATE_NOTIFIER": "1"}
    r = subprocess.run(
        [
            str(NODE_BIN / "mcp-inspector"),
            "--cli",
            *env_args,
            *rk_command(),
            "serve-mcp",
            "--method",
            "tools/list",
        ],
        capture_output=True,
        text=True,
        env=node_env,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    listed = json.loads(r.stdout)
    assert len(listed["tools"]) == 7
    assert all(_type_arrays(t) == [] for t in listed["tools"])
    assert len(json.dumps(listed, separators=(",", ":"))) <= LIMIT


# ------------------------------------------------------------------ [server] tools
def _settings(tmp_path: Path, **env: str) -> Any:
    s = load_settings(
        environ={"REASONKIT_DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL_AUTO": "false", **env}
    )
    s.protocols.dirs = []
    return s


@pytest.mark.anyio
async def test_server_tools_exposes_only_the_selected_tools(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.server.tools = ["think", "run_result"]
    core = build_server(s, load_registry([]), metrics=Metrics())
    try:
        async with Client(core.server) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"think", "run_result"}
            with pytest.raises(MCPError, match="Unknown tool: gigathink"):
                await client.call_tool("gigathink", {"query": "q"})
    finally:
        core.service.close()


def test_server_tools_from_the_config_file_and_unknown_names(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\ntools = ["gigathink", "thinker", "run_results"]\n')
    s = load_settings(
        cfg, environ={"REASONKIT_DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL_AUTO": "false"}
    )
    assert s.server.tools == ["gigathink", "thinker", "run_results"]
    with pytest.raises(ConfigError) as err:
        build_server(s, load_registry([]), metrics=Metrics())
    message = str(err.value)
    assert "'thinker', 'run_results' are not tools" in message
    assert (
        "the tools are: bedrock, brutalhonesty, gigathink, laserlogic, proofguard, think, run_result"
        in message
    )


def test_rk_serve_mcp_refuses_an_unknown_tool_name(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\ntools = ["gigathnk"]\n')
    env = {**_stdio_env(tmp_path), "REASONKIT_CONFIG": str(cfg)}
    proc = subprocess.run(
        [*rk_command(), "serve-mcp"], input=b"", capture_output=True, env=env, cwd=tmp_path, timeout=60
    )
    assert proc.returncode != 0 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "'gigathnk' is not a tool; the tools are: bedrock," in err and "Traceback" not in err


# ------------------------------------------------------------------ think: calls and time per profile
FANX = f"""
id = "fanx"
name = "FanX"
description = "list, for_each sampled twice, join"
result = {{ step = "join", field = "answer" }}
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "list"
kind = "generate"
prompt = "LIST {{{{ inputs.query }}}} {{{{ inputs.context }}}}"
output = {out(items="array")}
min_items = 3
max_items = MAX
[[steps]]
id = "each"
kind = "analyze"
for_each = "steps.list.items"
samples = 2
prompt = "EACH {{{{ item }}}}"
output = {out(note="string")}
[[steps]]
id = "join"
kind = "synthesize"
depends_on = ["each"]
prompt = "JOIN {{{{ steps.each }}}}"
output = {out(answer="string")}
"""

SOLO = f"""
id = "solo1"
name = "Solo"
description = "one step"
result = {{ step = "only", field = "answer" }}
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "only"
kind = "generate"
prompt = "ONLY {{{{ inputs.query }}}} {{{{ inputs.context }}}}"
output = {out(answer="string")}
"""

PROFILE = """
[profiles.wide]
description = "fanx, then solo1 only when unsure"
min_confidence = 0.5
[[profiles.wide.chain]]
protocol = "fanx"
[[profiles.wide.chain]]
protocol = "solo1"
when = { confidence_below = 0.9 }
"""


def _think_description(tmp_path: Path, max_items: int) -> str:
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    (d / "fanx.toml").write_text(FANX.replace("MAX", str(max_items)))
    (d / "solo1.toml").write_text(SOLO)
    (d / "profiles.toml").write_text(PROFILE)
    registry = load_registry([d], include_builtin=False)
    assert not registry.problems, registry.problems
    s = _settings(tmp_path)
    s.storage.save_runs = False
    s.server.tool_deadline_secs = 50
    core = build_server(s, registry, metrics=Metrics())
    return next(t.description or "" for t in core.tools if t.name == "think")


def test_think_states_calls_and_time_computed_from_the_protocols(tmp_path: Path) -> None:
    # fanx: 1 + 2 samples x 3..5 items + 1 = 8-12 calls in 3 rounds; solo1 (may be skipped): +0..1
    # call, +1 round -> 4 rounds of 5-15 s
    text = _think_description(tmp_path, max_items=5)
    assert "wide = fanx > solo1: 8-13 model calls, ~20-60 s" in text
    # a protocol that changes changes the numbers: they are not written anywhere by hand
    text = _think_description(tmp_path, max_items=9)
    assert "wide = fanx > solo1: 8-21 model calls, ~20-60 s" in text


@pytest.mark.anyio
async def test_a_reload_with_an_unknown_tool_name_keeps_the_running_tools(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.server.tools = ["think", "run_result"]
    core = build_server(s, load_registry([]), metrics=Metrics())
    try:
        bad = _settings(tmp_path)
        bad.server.tools = ["think", "gigathnk"]
        core.settings_loader = lambda: bad
        assert await core.reload() is False
        assert [t.name for t in core.tools] == ["think", "run_result"]
        good = _settings(tmp_path)
        good.server.tools = ["gigathink"]
        core.settings_loader = lambda: good
        assert await core.reload() is True
        assert [t.name for t in core.tools] == ["gigathink"]
    finally:
        core.service.close()
