"""Clients we did not write: the MCP Inspector CLI (over HTTP and stdio), against `rk serve-mcp`
subprocesses (the MCP conformance suite: test_conformance.py).

Both need Node >= 22, installed into tools/node (gitignored) by .ci/run:

    mkdir -p tools/node && cd tools/node && echo '{"private": true}' > package.json
    npm i --no-audit --no-fund node@22 @modelcontextprotocol/inspector \
        @modelcontextprotocol/conformance@0.2.0-alpha.12
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.programs import skip_or_fail
from tests.server.conftest import routed
from tests.server.procs import HttpServer, rk_command

ROOT = Path(__file__).resolve().parents[3]  # tests/server/<room>/this file
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / ".bin"
INSTALL = (
    "mkdir -p tools/node && cd tools/node && echo '{\"private\": true}' > package.json && "
    "npm i --no-audit --no-fund node@22 @modelcontextprotocol/inspector "
    "@modelcontextprotocol/conformance@0.2.0-alpha.12"
)


def node_missing() -> str | None:
    """Why Node >= 22 and the two clients cannot run here, or None."""
    node = NODE_BIN / "node"
    if not node.exists():
        return f"Node >= 22 is not installed in {NODE_BIN.parent.parent}"
    for tool in ("mcp-inspector", "conformance"):
        if not (NODE_BIN / tool).exists():
            return f"{tool} is not installed in {NODE_BIN.parent.parent}"
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except OSError as exc:
        return f"{node} does not run: {exc}"
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 22:
        return f"{node} is {version}; Node >= 22 is needed"
    return None


_missing = node_missing()


@pytest.fixture(autouse=True)
def _needs_node22() -> None:
    """Skipped (failed under CI) when Node 22 and the clients are missing (tests/programs.py)."""
    if _missing is not None:
        skip_or_fail(f"NOT TESTED: external MCP clients: {_missing}; install with: {INSTALL}")


def node_env(home: Path) -> dict[str, str]:
    return {
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "NO_UPDATE_NOTIFIER": "1",
        "npm_config_update_notifier": "false",
        "NODE_NO_WARNINGS": "1",
    }


def inspector(home: Path, *args: str, timeout: float = 90) -> dict:
    r = subprocess.run(
        [str(NODE_BIN / "mcp-inspector"), "--cli", *args],
        capture_output=True,
        text=True,
        env=node_env(home),
        timeout=timeout,
    )
    assert r.returncode == 0, f"inspector failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


@pytest.fixture
def http_server(server_env, fake_llm):
    fake_llm.default = routed({})
    srv = HttpServer(server_env)
    yield srv
    assert srv.stop() == 0


def test_inspector_cli_over_http(http_server, tmp_path):
    url = f"{http_server.url}/mcp"
    listed = inspector(tmp_path, url, "--transport", "http", "--method", "tools/list")
    names = {t["name"] for t in listed["tools"]}
    assert {"tiny", "fan", "think", "run_result", "gigathink", "laserlogic"} <= names
    called = inspector(
        tmp_path,
        url,
        "--transport",
        "http",
        "--method",
        "tools/call",
        "--tool-name",
        "tiny",
        "--tool-arg",
        "query=Is it safe?",
        "count=3",
        "strict=true",
    )
    assert called.get("isError") in (None, False), called
    assert (
        called["structuredContent"]["status"] == "complete"
        and called["structuredContent"]["protocol"] == "tiny"
    )
    res = inspector(
        tmp_path,
        url,
        "--transport",
        "http",
        "--method",
        "resources/read",
        "--uri",
        "reasonkit://protocols/tiny",
    )
    assert 'id = "tiny"' in res["contents"][0]["text"]
    prompt = inspector(
        tmp_path,
        url,
        "--transport",
        "http",
        "--method",
        "prompts/get",
        "--prompt-name",
        "tiny",
        "--prompt-args",
        "query=hello",
    )
    assert "<query>\nhello\n</query>" in prompt["messages"][0]["content"]["text"]


def test_inspector_cli_over_stdio(server_env, fake_llm, tmp_path):
    fake_llm.default = routed({})
    env_args = [a for k, v in server_env.items() if k not in ("PATH", "HOME") for a in ("-e", f"{k}={v}")]
    cmd = [*env_args, *rk_command(), "serve-mcp"]
    listed = inspector(Path(server_env["HOME"]), *cmd, "--method", "tools/list")
    assert {"tiny", "think", "run_result"} <= {t["name"] for t in listed["tools"]}
    called = inspector(
        Path(server_env["HOME"]),
        *cmd,
        "--method",
        "tools/call",
        "--tool-name",
        "tiny",
        "--tool-arg",
        "query=q",
        "ratio=0.5",
    )
    assert called["structuredContent"]["complete"] is True
