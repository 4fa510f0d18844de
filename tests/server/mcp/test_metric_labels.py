"""/metrics stays small whatever clients send (issue 23, hole 3): made-up JSON-RPC methods, tool
names, profiles and notifications become the label `other`, never a new series; client text never
reaches /metrics."""

from __future__ import annotations

import re

import pytest

from reasonkit.observability.metrics import OTHER, Metrics
from reasonkit.server.http.apps import build_http_app
from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, asgi_client, call, rpc

pytestmark = pytest.mark.anyio

MARK = "zq7"  # in every made-up name, so a leak is easy to find


def label_values(body: str, label: str) -> set[str]:
    return set(re.findall(rf'{label}="([^"]*)"', body))


async def test_made_up_methods_and_tools_leave_metrics_bounded(make_server, fake_llm):
    fake_llm.default = routed({})
    core = make_server(builtin=False)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        ok = await http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q"}))
        assert ok.status_code == 200
        await http.post("/mcp", headers=MCP_HEADERS, json=rpc("tools/list"))
        before = len((await http.get("/metrics")).text)
        for i in range(250):
            await http.post("/mcp", headers=MCP_HEADERS, json=rpc(f"{MARK}/method-{i}", {}, id=i))
            await http.post("/mcp", headers=MCP_HEADERS, json=call(f"{MARK}-tool-{i}", {"query": "q"}, id=i))
        for i in range(50):
            await http.post(
                "/mcp", headers=MCP_HEADERS, json=call("think", {"query": "q", "profile": f"{MARK}{i}"})
            )
        body = (await http.get("/metrics")).text
    assert MARK not in body
    methods = label_values(body, "method")
    assert {"tiny", "tools/list", OTHER} <= methods, methods
    assert methods <= {"tiny", "think", "run_result", "tools/list", "tools/call", "initialize", OTHER}, (
        methods
    )
    assert len(body) < before + 8_000, (before, len(body))


def test_observe_request_keeps_only_known_values():
    m = Metrics()
    m.know(["tiny"])
    m.observe_request("tiny", "tiny", "complete", 0.1)
    m.observe_request("ping", "", "ok", 0.1)
    m.observe_request("x" * 500, "y" * 500, "z" * 500, 0.1)
    m.observe_run("w" * 500, "complete", 0.5, [])
    body = m.render()[0].decode()
    assert "xxx" not in body and "yyy" not in body and "zzz" not in body and "www" not in body
    assert label_values(body, "method") == {"tiny", "ping", OTHER}
    assert label_values(body, "status") >= {"complete", "ok", OTHER}
