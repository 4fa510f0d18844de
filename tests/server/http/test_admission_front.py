"""The admission front (issue 26, goal 3): over capacity, a ThinkTool call that names itself in the
MCP routing headers (`Mcp-Method`, `Mcp-Name`) is refused with 503 + Retry-After before its body is
read, while the admitted calls are still running. Nothing here is timed: the test drives the ASGI
app with a `receive` that records whether the body was asked for and never delivers it."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import MCP_HEADERS, asgi_client, call, metric, poll

pytestmark = pytest.mark.anyio


def _scope(headers: dict[str, str]) -> dict[str, Any]:
    raw = [(k.encode(), v.encode()) for k, v in {**MCP_HEADERS, "host": "127.0.0.1:9100", **headers}.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50001),
        "server": ("127.0.0.1", 9100),
        "state": {},
    }


async def _first_move(app: Any, headers: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """Send one request whose body never arrives: 'answered' when the app sent a response before
    asking for the body, 'read' when it asked for the body first."""
    sent: list[dict[str, Any]] = []
    moves: list[str] = []
    never = anyio.Event()

    async def receive() -> dict[str, Any]:
        moves.append("read")
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.start" and not moves:
            moves.append("answered")

    async with anyio.create_task_group() as tg:
        tg.start_soon(app, _scope(headers), receive, send)
        await poll(lambda: moves)
        tg.cancel_scope.cancel()
    return moves[0], sent


@pytest.fixture
def full_app(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({"JOIN": (None, 30.0)})  # the admitted run holds its slot
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.max_concurrent_runs = 1
    s.server.admission_queue = 0
    core = make_server(settings=s)
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {})
    return core, build_http_app(core, "127.0.0.1")


async def test_a_refusal_is_sent_before_the_body_is_read_while_the_admitted_call_runs(full_app):
    core, app = full_app
    async with asgi_client(app) as http, anyio.create_task_group() as tg:
        tg.start_soon(lambda: http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q"})))
        await poll(lambda: core.admission.running == 1)

        move, sent = await _first_move(app, {"mcp-method": "tools/call", "mcp-name": "tiny"})
        assert move == "answered"
        start = sent[0]
        assert start["status"] == 503
        headers = dict(start["headers"])
        assert int(headers[b"retry-after"]) >= 1
        assert b'"reason": "busy"' in sent[1]["body"]
        assert core.admission.running == 1  # the admitted call is still running
        body, _ = core.metrics.render()
        assert metric(body.decode(), 'reasonkit_admission_total{outcome="rejected",reason="capacity"}') == 1
        tg.cancel_scope.cancel()


async def test_in_a_burst_the_refusal_goes_out_before_the_admitted_call_takes_its_slot(full_app):
    """Two calls arrive together at one free slot: the second is refused before the first has even
    read its body and taken the slot, so the refusal never waits for the admitted call's work on
    the event loop (the gate, the SDK, the run's start)."""
    core, app = full_app
    running_at_refusal: list[int] = []
    sent: list[dict[str, Any]] = []
    body = json.dumps(call("tiny", {"query": "q"})).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send_second(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            running_at_refusal.append(core.admission.running)
        sent.append(message)

    async def nothing(message: dict[str, Any]) -> None:
        return None

    routed = {"mcp-method": "tools/call", "mcp-name": "tiny"}
    async with asgi_client(app), anyio.create_task_group() as tg:
        tg.start_soon(app, _scope(routed), receive, nothing)
        tg.start_soon(app, _scope(routed), receive, send_second)
        await poll(lambda: core.admission.running == 1 and sent)
        tg.cancel_scope.cancel()
    assert sent[0]["status"] == 503
    assert running_at_refusal == [0]  # the admitted call had not taken its slot yet


async def test_over_capacity_what_is_not_a_run_still_reaches_the_gate(full_app):
    """`run_result`, `tools/list` and a request without routing headers (a client of the handshake
    era) are not refused at the front: the gate reads their body and decides as before."""
    core, app = full_app
    async with asgi_client(app) as http, anyio.create_task_group() as tg:
        tg.start_soon(lambda: http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q"})))
        await poll(lambda: core.admission.running == 1)
        for headers in (
            {"mcp-method": "tools/call", "mcp-name": "run_result"},
            {"mcp-method": "tools/list"},
            {},
        ):
            move, _ = await _first_move(app, headers)
            assert move == "read", headers
        tg.cancel_scope.cancel()


async def test_below_capacity_a_call_passes_the_front(full_app):
    core, app = full_app
    async with asgi_client(app):
        move, _ = await _first_move(app, {"mcp-method": "tools/call", "mcp-name": "tiny"})
    assert move == "read"


async def test_while_draining_every_tool_call_is_refused_at_the_front(full_app):
    core, app = full_app
    async with asgi_client(app):
        core.admission.draining = True
        move, sent = await _first_move(app, {"mcp-method": "tools/call", "mcp-name": "run_result"})
    assert move == "answered" and sent[0]["status"] == 503
    assert b'"reason": "draining"' in sent[1]["body"]
