"""`rk serve-mcp` on stdio answers `tools/list` without importing what only a `tools/call` needs
(issue 12, point 7): the engine, the provider SDKs, the HTTP-only run pages and connection code.

The server runs as a real subprocess under a small `-c` wrapper that writes `sorted(sys.modules)`
to a file when the process exits (stdin closed: a normal exit, so `atexit` runs). What the MCP SDK
itself imports at start (starlette, uvicorn, httpx2, opentelemetry) is not ReasonKit's to defer and
is not checked here; the run store stays opened at start (a bad data directory fails there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server.conftest import routed
from tests.server.procs import LineReader

WRAPPER = (
    "import atexit, os, runpy, sys\n"
    "out = os.environ['RK_TEST_MODULES_OUT']\n"
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "sys.argv = ['rk', 'serve-mcp']\n"
    "runpy.run_module('reasonkit.cli', run_name='__main__', alter_sys=True)\n"
)

# Needed only once a tool runs (or only in HTTP mode): none of them may be loaded by tools/list.
DEFERRED = (
    "openai",
    "anthropic",
    "psycopg",
    "llama_cpp",
    "h11",
    "reasonkit.engine",
    "reasonkit.render",
    "reasonkit.server.http.run_pages",
    "reasonkit.server.http.middleware",
    "reasonkit.server.http.connections",
)


def _session(env: dict[str, str], out_file: Path, *, call: bool) -> tuple[set[str], str]:
    """initialize + tools/list (+ one tools/call), close stdin; the modules loaded at exit."""
    err_path = out_file.with_suffix(".stderr")
    with (
        err_path.open("wb") as err,  # a file, not a pipe: debug logs cannot fill it and block the server
        subprocess.Popen(
            [sys.executable, "-c", WRAPPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**env, "RK_TEST_MODULES_OUT": str(out_file)},
        ) as proc,
    ):
        _talk(proc, call=call)
    stderr = err_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr
    assert out_file.exists(), f"the wrapper wrote no module list; stderr:\n{stderr}"
    return set(out_file.read_text().split()), stderr


def _talk(proc: subprocess.Popen, *, call: bool) -> None:
    out = LineReader(proc.stdout)

    def send(obj: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(obj) + "\n").encode())
        proc.stdin.flush()

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            }
        )
        assert out.until(lambda m: m.get("id") == 1)["result"]["serverInfo"]["name"] == "reasonkit"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = out.until(lambda m: m.get("id") == 2)
        assert {"tiny", "think", "run_result"} <= {t["name"] for t in tools["result"]["tools"]}
        if call:
            params = {"name": "tiny", "arguments": {"query": "q", "count": "2"}}
            send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params})
            result = out.until(lambda m: m.get("id") == 3)["result"]
            assert result["isError"] is False, result
            assert result["structuredContent"]["status"] == "complete"
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_tools_list_loads_no_run_path_module(server_env, fake_llm, tmp_path):
    fake_llm.default = routed({})
    modules, stderr = _session(server_env, tmp_path / "modules.txt", call=False)
    assert "reasonkit.server.mcp.tools" in modules and "mcp" in modules  # the list really came from us
    loaded = [name for name in DEFERRED if _loaded(modules, name)]
    assert loaded == [], f"imported before the first tools/call: {loaded}"


def test_first_tools_call_loads_the_run_path(server_env, fake_llm, tmp_path):
    fake_llm.default = routed({})
    modules, _ = _session(server_env, tmp_path / "modules.txt", call=True)
    # the same wrapper sees the deferred modules once a tool has run (the hook is not blind)
    for name in ("reasonkit.engine", "reasonkit.render", "reasonkit.server.http.run_pages", "openai"):
        assert name in modules, name
    assert not _loaded(modules, "anthropic")  # the configured provider is openai: only its SDK loads
