"""Lifecycle: SIGHUP reloads protocols, settings and tokens without dropping connections (keeping
the previous version of a file that broke, and everything when the config itself broke), clients
are told the tool list changed; kill -9 mid-run leaves a readable store with the run `interrupted`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from reasonkit.errors import ConfigError
from reasonkit.observability.metrics import Metrics
from reasonkit.server.mcp.app import build_server
from tests.server.conftest import TINY, make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, block_text, call, metric, poll, rpc, run
from tests.server.procs import HttpServer, LineReader, rk_command

pytestmark = pytest.mark.anyio

EXTRA = TINY.replace('id = "tiny"', 'id = "extra"').replace('name = "Tiny"', 'name = "Extra"')


def wait_until(pred, within: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + within
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {within}s"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- in-process reload
async def test_reload_swaps_protocols_keeps_previous_versions_of_broken_files(fake_llm, proto_dir, tmp_path):
    fake_llm.default = routed({})
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.protocols.dirs = [str(proto_dir)]
    core = build_server(settings, metrics=Metrics())
    events: list[str] = []
    core.bus.subscribe(lambda ev: events.append(type(ev).__name__))
    try:
        names = {t.name for t in core.tools}
        assert {"tiny", "fan", "think", "gigathink"} <= names and "extra" not in names
        (proto_dir / "extra.toml").write_text(EXTRA)
        (proto_dir / "fan.toml").write_text("id = 'fan'\nthis is = = not toml")
        assert await core.reload() is True
        names = {t.name for t in core.tools}
        assert {"tiny", "extra", "fan", "think"} <= names  # the broken fan.toml: its last good version stays
        assert core.protocols["fan"].steps[0].id == "list"
        async with Client(core.server) as client:
            r = await client.call_tool("extra", {"query": "q"})
            assert not r.is_error and r.structured_content["protocol"] == "extra"
            assert "fan" in {t.name for t in (await client.list_tools()).tools}
        assert events == ["ToolsListChanged", "PromptsListChanged", "ResourcesListChanged"]
        body = core.metrics.render()[0].decode()
        assert metric(body, 'reasonkit_config_reloads_total{outcome="partial"}') == 1

        # A config that cannot be loaded changes nothing.
        def broken() -> None:
            raise ConfigError("/etc/reasonkit.toml: not valid TOML: Expected '=' (at line 1, column 6)")

        core.settings_loader = broken  # type: ignore[assignment]
        (proto_dir / "extra.toml").unlink()
        assert await core.reload() is False
        assert "extra" in {t.name for t in core.tools}
        body = core.metrics.render()[0].decode()
        assert metric(body, 'reasonkit_config_reloads_total{outcome="failed"}') == 1

        # New settings reach the tools (their deadline) and the next calls.
        new = settings.model_copy(deep=True)
        new.server.tool_deadline_secs = 12
        core.settings_loader = lambda: new
        events.clear()
        assert await core.reload() is True
        assert core.deadline == 12 and "extra" not in {t.name for t in core.tools}
        assert "12" in (next(t for t in core.tools if t.name == "tiny").description or "")
        assert events[0] == "ToolsListChanged"
    finally:
        core.service.close()


# ----------------------------------------------------------------------------- SIGHUP over HTTP
def _config(tmp_path: Path, proto_dir: Path, tokens: Path) -> Path:
    cfg = tmp_path / "reload.toml"
    cfg.write_text(
        f"""
[protocols]
dirs = [{json.dumps(str(proto_dir))}]
[engine]
default_profile = "solo"
[llm.providers.openai]
max_retries = 0
[server]
shutdown_grace_secs = 5
[security]
auth_tokens_file = {json.dumps(str(tokens))}
"""
    )
    return cfg


async def test_sighup_over_http_reloads_without_dropping_calls(server_env, fake_llm, proto_dir, tmp_path):
    fake_llm.default = routed({"JOIN": (None, 1.5)})
    tokens = tmp_path / "tokens"
    tokens.write_text("# ops rotate this file, then: systemctl reload reasonkit\ntoken-A-0123456789abcdef\n")
    tokens.chmod(0o600)
    cfg = _config(tmp_path, proto_dir, tokens)
    srv = HttpServer({**server_env, "REASONKIT_CONFIG": str(cfg)})
    old = {**MCP_HEADERS, "authorization": "Bearer token-A-0123456789abcdef"}
    new = {**MCP_HEADERS, "authorization": "Bearer token-B-0123456789abcdef"}
    result: dict = {}
    try:
        async with httpx.AsyncClient(timeout=20) as http:

            async def slow_call() -> None:
                r = await http.post(f"{srv.url}/mcp", headers=old, json=call("tiny", {"query": "q"}))
                result["r"] = r

            listening = anyio.Event()
            events: list[str] = []

            async def listen() -> None:  # a 2026-07-28 client with a subscriptions/listen stream open
                async with (
                    create_mcp_http_client(
                        headers={"Authorization": "Bearer token-A-0123456789abcdef"}
                    ) as hc,
                    Client(streamable_http_client(f"{srv.url}/mcp", http_client=hc)) as client,
                    client.listen(tools_list_changed=True) as sub,
                ):
                    listening.set()
                    async for event in sub:
                        events.append(type(event).__name__)
                        break

            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                with anyio.fail_after(10):
                    await listening.wait()
                tg.start_soon(slow_call)
                await poll(lambda: any(first.startswith("JOIN") for first in _firsts(fake_llm)))
                (proto_dir / "extra.toml").write_text(EXTRA)
                (proto_dir / "broken.toml").write_text("id = = 'broken'")
                tokens.write_text("token-B-0123456789abcdef\n")
                srv.proc.send_signal(signal.SIGHUP)
                await poll(lambda: "reloaded:" in srv.log())
                assert (
                    await http.get(f"http://127.0.0.1:{srv.metrics_port}/health/ready")
                ).status_code == 200
            assert events == [
                "ToolsListChanged"
            ]  # the open listen stream got the change (and was not dropped)
            r = result["r"]  # the call in flight across the reload finished normally
            assert r.status_code == 200 and answer(r)["result"]["structuredContent"]["status"] == "complete"

            assert (
                await http.post(f"{srv.url}/mcp", headers=old, json=rpc("ping"))
            ).status_code == 401  # rotated out
            listed = answer(await http.post(f"{srv.url}/mcp", headers=new, json=rpc("tools/list")))
            names = {t["name"] for t in listed["result"]["tools"]}
            assert {"tiny", "fan", "extra"} <= names and "broken" not in names
            log = srv.log()
            assert "broken.toml" in log and "added extra" in log

            # A config file that no longer parses: logged, everything stays as it was.
            cfg.write_text(cfg.read_text() + "\n[server\n")
            srv.proc.send_signal(signal.SIGHUP)
            await poll(lambda: "reload failed" in srv.log())
            assert "not valid TOML" in srv.log()
            again = answer(await http.post(f"{srv.url}/mcp", headers=new, json=rpc("tools/list")))
            assert "extra" in {t["name"] for t in again["result"]["tools"]}
            body = (await http.get(f"http://127.0.0.1:{srv.metrics_port}/metrics")).text
            assert metric(body, 'reasonkit_config_reloads_total{outcome="partial"}') == 1
            assert metric(body, 'reasonkit_config_reloads_total{outcome="failed"}') == 1
    finally:
        code = srv.stop()
    assert code == 0


def _firsts(fake_llm) -> list[str]:
    out = []
    for req in list(fake_llm.requests):
        msgs = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
        if msgs:
            c = msgs[0]["content"]
            out.append(c if isinstance(c, str) else "".join(b.get("text", "") for b in c))
    return out


# ----------------------------------------------------------------------------- SIGHUP on stdio: list_changed
def test_sighup_on_stdio_sends_tools_list_changed(server_env, fake_llm, proto_dir):
    fake_llm.default = routed({})
    with subprocess.Popen(
        [*rk_command(), "serve-mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env,
    ) as proc:
        out = LineReader(proc.stdout)
        stdin, stderr_pipe = proc.stdin, proc.stderr
        assert stdin is not None and stderr_pipe is not None  # started with PIPE

        def send(obj: dict) -> None:
            stdin.write((json.dumps(obj) + "\n").encode())
            stdin.flush()

        try:
            send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "1"},
                    },
                }
            )
            init = out.until(lambda m: m.get("id") == 1)
            caps = init["result"]["capabilities"]
            assert caps["tools"]["listChanged"] is True and caps["prompts"]["listChanged"] is True
            send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            assert "extra" not in {
                t["name"] for t in out.until(lambda m: m.get("id") == 2)["result"]["tools"]
            }
            (proto_dir / "extra.toml").write_text(EXTRA)
            proc.send_signal(signal.SIGHUP)
            out.until(lambda m: m.get("method") == "notifications/tools/list_changed")
            send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
            assert "extra" in {t["name"] for t in out.until(lambda m: m.get("id") == 3)["result"]["tools"]}
            send(
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "tools/call",
                    "params": {"name": "extra", "arguments": {"query": "q"}},
                }
            )
            assert (
                out.until(lambda m: m.get("id") == 4)["result"]["isError"] is False
            )  # same session, new tool
            stdin.close()
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            stderr = stderr_pipe.read().decode()
    assert "received SIGHUP" in stderr and "added extra" in stderr


# ----------------------------------------------------------------------------- kill -9 mid-run
def _stored_step_status(store_path: Path, query: str, step_id: str) -> str | None:
    """The stored status of `step_id` in the running run for `query` (read from the run store)."""
    from reasonkit.store import SqliteRunStore

    with SqliteRunStore(store_path) as store:
        for row in store.list(status="running"):
            trace = store.get(row["run_id"]) or {}
            if (trace.get("inputs") or {}).get("query") != query:
                continue
            for entry in trace.get("entries") or []:
                for step in entry.get("steps") or []:
                    if step.get("step_id") == step_id:
                        return step.get("status")
    return None


async def test_sigkill_mid_run_leaves_a_readable_store(server_env, fake_llm):
    fake_llm.default = routed({})
    store_path = Path(server_env["REASONKIT_DATA_DIR"]) / "runs.db"
    srv = HttpServer(server_env)
    try:
        async with Client(f"{srv.url}/mcp") as client:
            for q in ("first", "second"):
                r = await client.call_tool("tiny", {"query": q})
                assert r.structured_content["status"] == "complete"
        fake_llm.default = routed({"JOIN": (None, 60)})  # the third run hangs in its last step
        n = len(fake_llm.requests)
        async with anyio.create_task_group() as tg:

            async def stuck() -> None:
                try:
                    async with Client(f"{srv.url}/mcp") as client:
                        await client.call_tool("tiny", {"query": "third"})
                except Exception:  # noqa: BLE001 - the server dies under it
                    pass

            tg.start_soon(stuck)
            await poll(lambda: len(fake_llm.requests) >= n + 2)
            # the first step's result is written as it finishes: wait until the store holds it
            await poll(lambda: _stored_step_status(store_path, "third", "first") == "ok")
            srv.proc.kill()  # SIGKILL: no handler, no cleanup
            assert srv.proc.wait(timeout=10) == -signal.SIGKILL
            tg.cancel_scope.cancel()
    finally:
        srv.stop()

    env = {**server_env}
    from reasonkit.store import SqliteRunStore

    with SqliteRunStore(
        Path(env["REASONKIT_DATA_DIR"]) / "runs.db"
    ) as store:  # readable right after the kill
        assert store.integrity_check() == "ok"
        assert sorted(r["status"] for r in store.list()) == ["complete", "complete", "running"]

    again = HttpServer(server_env)  # the next start marks the dead process's run
    try:
        assert "1 run(s) from a previous process were marked interrupted" in again.log()
        listed = await run([*rk_command(), "runs", "list", "--format", "json"], env)
        runs = {r["run_id"]: r for r in json.loads(listed.stdout)}
        statuses = sorted(r["status"] for r in runs.values())
        assert statuses == ["complete", "complete", "interrupted"], runs
        dead = next(r for r in runs.values() if r["status"] == "interrupted")
        async with Client(f"{again.url}/mcp") as client:
            res = await client.call_tool("run_result", {"run_id": dead["run_id"]})
        assert res.structured_content["status"] == "interrupted" and "Interrupted run" in block_text(
            res.content[0]
        )
        shown = await run([*rk_command(), "runs", "export", dead["run_id"]], env)
        trace = json.loads(shown.stdout)
        steps = {s["step_id"]: s["status"] for e in trace["entries"] for s in e["steps"]}
        assert (
            trace["inputs"]["query"] == "third"
            and trace["status"] == "interrupted"
            and steps.get("first") == "ok"
        ), steps
        for r in runs.values():
            if r["status"] == "complete":
                full = json.loads((await run([*rk_command(), "runs", "export", r["run_id"]], env)).stdout)
                assert full["status"] == "complete" and [
                    s["status"] for s in full["entries"][0]["steps"]
                ] == ["ok", "ok"]
    finally:
        assert again.stop() == 0


def test_serving_freezes_the_start_up_heap() -> None:
    """`rk serve-mcp` over HTTP moves what start-up built out of the collector's sight before it
    serves (issue 26: full collections re-walking the start-up heap were the largest single item of
    a cached call's CPU)."""
    import gc

    from reasonkit.server.lifecycle import serve

    before = gc.get_freeze_count()
    try:
        serve.settle_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
