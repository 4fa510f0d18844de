"""JSON nested ~1,000 levels deep gets a 400 JSON-RPC parse error, and no traceback in the log
(issue 23, hole 11): the gate's `JsonDepthLimit` rule, in-process and against the real server."""

from __future__ import annotations

import pytest
from loguru import logger

from reasonkit.jsonguard import MAX_DEPTH
from reasonkit.server.http.apps import build_http_app
from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, asgi_client, call

pytestmark = pytest.mark.anyio


def deep(levels: int) -> bytes:
    """A tools/call whose `query` argument is an array nested `levels` deep."""
    inner = "[" * levels + "]" * levels
    params = f'{{"name": "tiny", "arguments": {{"query": {inner}}}}}'
    return f'{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {params}}}'.encode()


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", backtrace=True, diagnose=False)
    yield lines
    logger.remove(sink)


async def test_deep_nesting_is_a_parse_error_not_a_500(make_server, fake_llm, log_lines):
    fake_llm.default = routed({})
    core = make_server()
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for levels in (1000, 5000, MAX_DEPTH + 1):
            r = await http.post("/mcp", headers=MCP_HEADERS, content=deep(levels))
            assert r.status_code == 400, (levels, r.status_code, r.text[:200])
            error = r.json()["error"]
            assert error["code"] == -32700 and "nested deeper" in error["message"]
        # brackets inside strings do not count, and ordinary nesting passes
        text = "[" * 2000
        ok = await http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": text[:150]}))
        assert ok.status_code == 200
        shallow = await http.post("/mcp", headers=MCP_HEADERS, content=deep(10))
        assert shallow.status_code == 200
    joined = "\n".join(log_lines)
    assert "Traceback" not in joined and "RecursionError" not in joined


async def test_deep_nesting_in_a_batch_or_bare_array(make_server, fake_llm, log_lines):
    core = make_server()
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for body in (b"[" * 3000 + b"]" * 3000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[" * 3000):
            r = await http.post("/mcp", headers=MCP_HEADERS, content=body)
            assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    assert "Traceback" not in "\n".join(log_lines)
