"""Issue 24, nothing lost to a client's timeout: every progress notification names the run (so a
client that gives up can fetch it with `run_result`), the tool list tells how to run long, and a
client that goes away mid-call cancels the run, which is stored as cancelled."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from reasonkit.server.mcp import schemas
from reasonkit.store.sqlite import SqliteRunStore
from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, call, poll
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_progress_notification_names_the_run(make_server, fake_llm, mode):
    fake_llm.default = routed({"LIST": {"items": ["a", "b"], "confidence": 0.9}})
    core = make_server()
    messages: list[str] = []

    async def on_progress(progress, total, message):
        messages.append(message or "")

    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("fan", {"query": "q"}, progress_callback=on_progress)
    run_id = r.structured_content["run_id"]
    assert messages[0] == f"started fan as run {run_id}", messages
    assert len(messages) > 2 and all(run_id in m for m in messages), messages


async def test_tools_say_how_to_run_long(make_server):
    core = make_server(builtin=True)
    async with Client(core.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("laserlogic", "think", "tiny"):
        tool = tools[name]
        background = tool.input_schema["properties"]["background"]
        assert "run_result" in background["description"], background
        assert "run_id" in tool.input_schema["properties"]["deadline_s"]["description"]
        text = tool.description or ""
        assert "background" in text and "run_result" in text, text
        assert "task handle" not in text  # said once, in run_result's description
    assert "task handle" in (tools["run_result"].description or "")


def _stored(data_dir: Path, run_id: str) -> dict:
    with SqliteRunStore(data_dir / "runs.db") as store:
        return store.get(run_id) or {}


async def test_an_http_client_that_disconnects_cancels_its_run(server_env, fake_llm):
    """Over real HTTP: the client reads the first progress event (the run id) and the next one,
    then closes the connection while the 30 s step runs; the run stops at once and the store says
    it was cancelled because the client went away."""
    fake_llm.default = routed({"FIRST": (None, 0.05), "JOIN": (None, 30.0)})
    server = await anyio.to_thread.run_sync(HttpServer, server_env)
    try:
        message = call("tiny", {"query": "q"})
        message["params"]["_meta"] = {"progressToken": "p1"}
        run_id = None
        async with httpx.AsyncClient(timeout=20) as http:
            async with http.stream("POST", f"{server.url}/mcp", json=message, headers=MCP_HEADERS) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and line[5:].strip():
                        note = json.loads(line[5:])
                        if note.get("method") != "notifications/progress":
                            continue
                        if run_id is None:  # "started tiny as run <id>"
                            run_id = note["params"]["message"].rsplit(" ", 1)[-1]
                        else:  # the first step is done; the slow second one is in flight: go away
                            break
        assert run_id, server.log()[-3000:]
        data_dir = Path(server_env["REASONKIT_DATA_DIR"])
        await poll(lambda: _stored(data_dir, run_id).get("status") not in (None, "running"), within=15)
        stored = _stored(data_dir, run_id)
        assert stored["status"] == "cancelled" and stored["complete"] is False, stored
        assert "client" in stored["stop_reason"], stored
        await anyio.sleep(0.3)
        assert sum(1 for r in fake_llm.requests if "JOIN" in json.dumps(r.body)) == 1  # nothing restarted
    finally:
        await anyio.to_thread.run_sync(server.stop)


def test_control_inputs_are_described_in_the_schema():
    props = schemas._control_properties(50.0)
    assert props["background"]["description"] and props["deadline_s"]["description"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_call_is_stored_with_the_clients_reason(make_server, fake_llm, mode):
    """Through the SDK's in-memory client: the caller cancels mid-call (its scope ends, as a client
    timeout does); the stored run says the client cancelled or went away."""
    fake_llm.default = routed({"FIRST": (None, 0.05), "JOIN": (None, 5.0)})
    core = make_server()
    run_ids: list[str] = []
    async with Client(core.server, mode=mode) as client:
        with anyio.move_on_after(1.0):
            await client.call_tool("tiny", {"query": "q"}, progress_callback=lambda *a: _note(run_ids, core))
    await poll(lambda: run_ids and _done(core, run_ids[0]), within=5)
    stored = core.store.get(run_ids[0])
    assert stored["status"] == "cancelled", stored
    assert stored["stop_reason"] == "the client cancelled the call or disconnected", stored
    assert "(the client cancelled the call or disconnected)" in stored["answer"]


async def _note(run_ids: list[str], core) -> None:
    run_ids.extend(rid for rid in core.live if rid not in run_ids)


def _done(core, run_id: str) -> bool:
    stored = core.store.get(run_id)
    return bool(stored) and stored["status"] != "running"
