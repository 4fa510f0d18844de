"""`rk serve-mcp` as a real subprocess: stdio (stdout carries only JSON-RPC) and streamable HTTP
(both protocol eras, /metrics, /health*, graceful SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.server.conftest import routed
from tests.server.helpers import block_text
from tests.server.procs import HttpServer, LineReader, rk_command

pytestmark = pytest.mark.anyio


# ----------------------------------------------------------------------------- stdio
def test_stdio_stdout_carries_only_json_rpc(server_env, fake_llm, tmp_path):
    fake_llm.default = routed({})
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "broken.toml").write_text("this is = = not toml")
    env = {**server_env, "REASONKIT_CONFIG": ""}
    cfg = tmp_path / "config2.toml"
    cfg.write_text(
        Path(server_env["REASONKIT_CONFIG"])
        .read_text()
        .replace("dirs = [", f"dirs = [{json.dumps(str(bad_dir))}, ")
    )
    env["REASONKIT_CONFIG"] = str(cfg)
    with subprocess.Popen(
        [*rk_command(), "serve-mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        lines, stderr = _stdio_session(proc)
    assert proc.returncode == 0, stderr
    for line in lines:
        msg = json.loads(line)  # every line is one JSON-RPC message, nothing else
        assert msg["jsonrpc"] == "2.0", line
    assert any(
        m.get("method") == "notifications/progress" and m["params"]["progressToken"] == "p1"
        for m in map(json.loads, lines)
    )
    assert "broken.toml" in stderr  # the bad user file is reported (on stderr) ...
    assert "ReasonKit MCP server on stdio" in stderr  # ... and logs went there too


def _stdio_session(proc: subprocess.Popen) -> tuple[list[str], str]:
    out = LineReader(proc.stdout)
    stdin, stderr_pipe = proc.stdin, proc.stderr
    assert stdin is not None and stderr_pipe is not None  # started with PIPE

    def send(obj: dict[str, Any] | str) -> None:
        stdin.write(((obj if isinstance(obj, str) else json.dumps(obj)) + "\n").encode())
        stdin.flush()

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
        init = out.until(lambda m: m.get("id") == 1)
        assert (
            init["result"]["protocolVersion"] == "2025-06-18"
            and init["result"]["serverInfo"]["name"] == "reasonkit"
        )
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = out.until(lambda m: m.get("id") == 2)
        assert {t["name"] for t in tools["result"]["tools"]} >= {
            "tiny",
            "fan",
            "think",
            "run_result",
            "gigathink",
        }
        send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {
                    "name": "tiny",
                    "arguments": {"query": "q", "count": "2"},
                    "_meta": {"progressToken": "p1"},
                },
            }
        )
        call = out.until(lambda m: m.get("id") == 3)
        assert (
            call["result"]["isError"] is False and call["result"]["structuredContent"]["status"] == "complete"
        )
        send("{not json")  # garbage in must not produce garbage out
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "nope", "arguments": {}}})
        err = out.until(lambda m: m.get("id") == 4)
        assert err["error"]["code"] == -32602
        stdin.close()
        proc.wait(timeout=15)
        rest = []
        while (line := out.q.get(timeout=5)) is not None:
            rest.append(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = stderr_pipe.read().decode()
    return out.lines + [x for x in rest if x.strip()], stderr


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_with_the_python_client(server_env, fake_llm, tmp_path, mode):
    fake_llm.default = routed({})
    errlog = (tmp_path / f"stderr-{mode}.log").open("w")
    params = StdioServerParameters(
        command=rk_command()[0], args=[*rk_command()[1:], "serve-mcp"], env=server_env
    )
    try:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"tiny", "think", "run_result"} <= names
            progress: list[float] = []

            async def on_progress(p, total, message):
                progress.append(p)

            r = await client.call_tool(
                "tiny", {"query": "q", "strict": "false"}, progress_callback=on_progress
            )
            assert not r.is_error and r.structured_content["complete"] is True
            assert progress and progress[-1] == 2.0
            bg = await client.call_tool("think", {"query": "q", "background": "true"})
            run_id = bg.structured_content["run_id"]
            for _ in range(200):
                res = await client.call_tool("run_result", {"run_id": run_id})
                if res.structured_content["status"] != "running":
                    break
                await anyio.sleep(0.05)
            assert res.structured_content["status"] == "complete"
    finally:
        errlog.close()


# ----------------------------------------------------------------------------- HTTP
def metric(body: str, name_and_labels: str) -> float:
    for line in body.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return 0.0


async def test_http_both_eras_metrics_health_and_sigterm(server_env, fake_llm):
    fake_llm.default = routed({})
    srv = HttpServer(server_env)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            before = (await http.get(f"{srv.url}/metrics")).text
            for port in (srv.port, srv.metrics_port):
                base = f"http://127.0.0.1:{port}"
                live = await http.get(f"{base}/health/live")
                ready = await http.get(f"{base}/health/ready")
                health = await http.get(f"{base}/health")
                assert (
                    live.status_code == 200 and ready.status_code == 200 and ready.json()["status"] == "ready"
                )
                body = health.json()
                assert health.status_code == 200 and body["status"] == "healthy", body
                assert body["checks"]["llm_provider"]["status"] == "healthy" and body["version"]
                assert set(body) >= {"status", "version", "timestamp", "checks"}

            for mode, version in (("legacy", "2025-11-25"), ("auto", "2026-07-28")):
                async with Client(f"{srv.url}/mcp", mode=mode) as client:
                    assert client.protocol_version == version
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert {"tiny", "fan", "think", "run_result", "gigathink"} <= names
                    seen: list[float] = []

                    async def on_progress(p, total, message, seen=seen):
                        seen.append(p)

                    r = await client.call_tool(
                        "tiny", {"query": "q", "count": "3"}, progress_callback=on_progress
                    )
                    assert not r.is_error and r.structured_content["status"] == "complete"
                    assert seen, f"no progress over HTTP ({mode})"
                    res = await client.read_resource("reasonkit://protocols/tiny")
                    assert 'id = "tiny"' in block_text(res.contents[0])

            # an older handshake-era client (2025-06-18), spoken by hand
            headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
            init = await http.post(
                f"{srv.url}/mcp",
                headers=headers,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "old", "version": "1"},
                    },
                },
            )
            assert init.status_code == 200 and '"protocolVersion":"2025-06-18"' in init.text
            listed = await http.post(
                f"{srv.url}/mcp",
                headers={**headers, "mcp-protocol-version": "2025-06-18"},
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            )
            assert listed.status_code == 200 and '"name":"tiny"' in listed.text
            # DNS-rebinding protection on a loopback bind
            evil = await http.post(
                f"{srv.url}/mcp",
                headers={**headers, "origin": "http://evil.example"},
                json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            )
            assert evil.status_code in (400, 403, 421)

            for port in (srv.port, srv.metrics_port):
                after = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                key = 'reasonkit_requests_total{method="tiny",profile="tiny",status="complete"}'
                assert metric(after, key) == metric(before, key) + 2
                assert metric(after, 'reasonkit_llm_tokens_total{provider="openai",type="input"}') > 0
                assert metric(after, 'reasonkit_request_duration_seconds_count{method="tiny"}') == 2
                assert metric(after, 'reasonkit_confidence_score_count{profile="tiny"}') == 2
    finally:
        code = srv.stop()
    assert code == 0, srv.proc.stderr


async def test_http_sigterm_drains_in_flight_calls(server_env, fake_llm):
    fake_llm.default = routed({"JOIN": (None, 1.5)})
    srv = HttpServer(server_env)
    result: dict[str, Any] = {}
    try:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                try:
                    async with Client(f"{srv.url}/mcp") as client:
                        # Listed first, as clients do: the SDK client otherwise re-lists the tools
                        # after the result (to validate it), which can race the server's exit.
                        await client.list_tools()
                        result["r"] = await client.call_tool("tiny", {"query": "q"})
                except Exception:
                    # The server may already be gone when the client closes its transport.
                    if "r" not in result:
                        raise

            tg.start_soon(call)
            for _ in range(500):
                if len(fake_llm.requests) >= 2:
                    break
                await anyio.sleep(0.02)
            srv.proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(timeout=2) as http:
                with anyio.fail_after(5):
                    while True:
                        ready = await http.get(f"http://127.0.0.1:{srv.metrics_port}/health/ready")
                        if ready.status_code == 503:
                            break
                        await anyio.sleep(0.02)
                assert ready.json()["status"] == "draining"
                assert (await http.get(f"http://127.0.0.1:{srv.metrics_port}/health/live")).status_code == 200
        r = result["r"]
        assert not r.is_error and r.structured_content["status"] == "complete"  # the in-flight call finished
        code = srv.proc.wait(timeout=15)
    finally:
        srv.stop()
    assert code == 0
    from reasonkit.store import SqliteRunStore

    with SqliteRunStore(Path(server_env["REASONKIT_DATA_DIR"]) / "runs.db") as store:
        assert [r["status"] for r in store.list()] == ["complete"]


def test_stdio_sigterm_exits_zero_and_saves_cancelled_runs(server_env, fake_llm):
    fake_llm.default = routed({"JOIN": (None, 30)})
    env = {**server_env}
    cfg = Path(env["REASONKIT_CONFIG"])
    cfg.write_text(cfg.read_text().replace("shutdown_grace_secs = 5", "shutdown_grace_secs = 0.5"))
    with subprocess.Popen(
        [*rk_command(), "serve-mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        code, took, stderr = _sigterm_session(proc, fake_llm)
    assert code == 0, stderr
    assert took < 8, stderr
    from reasonkit.store import SqliteRunStore

    with SqliteRunStore(Path(server_env["REASONKIT_DATA_DIR"]) / "runs.db") as store:
        # the grace period ended: the run returned its partial result (issue 12, point 3)
        assert [r["status"] for r in store.list()] == ["incomplete"]


def _sigterm_session(proc: subprocess.Popen, fake_llm) -> tuple[int, float, str]:
    out = LineReader(proc.stdout)
    stdin, stderr_pipe = proc.stdin, proc.stderr
    assert stdin is not None and stderr_pipe is not None  # started with PIPE
    try:
        for msg in (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            },
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "tiny", "arguments": {"query": "q"}},
            },
        ):
            stdin.write((json.dumps(msg) + "\n").encode())
            stdin.flush()
        out.until(lambda m: m.get("id") == 1)
        deadline = time.monotonic() + 10
        while len(fake_llm.requests) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)  # stdin stays open: the exit must not wait for the client
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = stderr_pipe.read().decode()
    return code, took, stderr
