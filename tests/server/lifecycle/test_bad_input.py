"""Hostile and odd input against a real `rk serve-mcp --port` subprocess: malformed JSON-RPC,
unknown tools and methods, wrong types, strings for numbers, inputs over their limits, huge bodies,
unicode (emoji, right-to-left, NUL) that must come back byte for byte, and an invalid TOML file in
a user protocol directory."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.fakes.fake_llm import Reply
from tests.server.conftest import first_user_text
from tests.server.helpers import MCP_HEADERS, answer, block_text, call, rpc
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio

UNICODE = "🧠 Is it safe? مرحبا بالعالم \u202eRTL override\u202c שלום · NUL:\u0000 · ZWJ 👩\u200d💻 · 𝔘𝔫𝔦"


def text_of(result) -> str:
    return "".join(c.text for c in result.content if c.type == "text")


@pytest.fixture
def bad_dir_server(server_env, fake_llm, tmp_path):
    def handler(req):
        prompt = first_user_text(req)
        if prompt.startswith("JOIN"):
            return Reply(json={"answer": f"echo: {UNICODE}", "confidence": 0.8})
        return Reply(json={"note": "n", "confidence": 0.8})

    fake_llm.default = handler
    bad = tmp_path / "more-protocols"
    bad.mkdir()
    (bad / "broken.toml").write_text('id = "broken"\n[[steps]\nthis is not toml')
    cfg = Path(server_env["REASONKIT_CONFIG"])
    text = (
        cfg.read_text().replace("dirs = [", f"dirs = [{json.dumps(str(bad))}, ")
        + "\n[security]\nmax_request_size_mb = 0.05\n"
    )
    cfg.write_text(text)
    srv = HttpServer(server_env)
    yield srv
    assert srv.stop() == 0


async def test_protocol_level_garbage_gets_json_rpc_errors(bad_dir_server):
    srv = bad_dir_server
    url = f"{srv.url}/mcp"
    async with httpx.AsyncClient(timeout=20) as http:
        r = await http.post(url, headers=MCP_HEADERS, content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700  # parse error
        r = await http.post(url, headers=MCP_HEADERS, content=b'{"jsonrpc": "2.0", "id": 1}')
        assert r.status_code == 400 and r.json()["error"]["code"] in (-32600, -32602)  # not a request
        r = await http.post(url, headers=MCP_HEADERS, content=b"[1, 2, 3]")
        assert r.status_code == 400 and "error" in r.json()
        r = await http.post(url, headers=MCP_HEADERS, content="\udcff".encode("utf-8", "surrogatepass"))
        assert r.status_code == 400 and "error" in r.json()
        unknown_tool = answer(
            await http.post(url, headers=MCP_HEADERS, json=call("no_such_tool", {"query": "q"}))
        )
        assert (
            unknown_tool["error"]["code"] == -32602
            and "Unknown tool: no_such_tool" in unknown_tool["error"]["message"]
        )
        unknown_method = answer(await http.post(url, headers=MCP_HEADERS, json=rpc("tools/explode")))
        assert unknown_method["error"]["code"] == -32601
        bad_params = answer(
            await http.post(url, headers=MCP_HEADERS, json=rpc("tools/call", {"arguments": {}}))
        )
        assert bad_params["error"]["code"] == -32602  # no tool name
        # a body over [security] max_request_size_mb (50 KiB here), declared or streamed
        big = json.dumps(call("tiny", {"query": "q", "context": "x" * 100_000})).encode()
        r = await http.post(url, headers=MCP_HEADERS, content=big)
        assert r.status_code == 413 and r.json()["error"]["data"]["reason"] == "too_large"

        async def chunks():
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        r = await http.post(url, headers=MCP_HEADERS, content=chunks())  # Transfer-Encoding: chunked
        assert r.status_code == 413 and "max_request_size_mb" in r.json()["error"]["message"]
        # the server is still fine
        listed = answer(await http.post(url, headers=MCP_HEADERS, json=rpc("tools/list")))
        names = {t["name"] for t in listed["result"]["tools"]}
    assert {"tiny", "fan", "think", "gigathink"} <= names and "broken" not in names
    log = srv.log()
    assert "broken.toml" in log and "not valid TOML" in log  # the bad user file is reported on stderr
    assert "Traceback" not in log


async def test_tool_arguments_wrong_coerced_huge_and_unicode(bad_dir_server, fake_llm):
    srv = bad_dir_server
    async with Client(f"{srv.url}/mcp") as client:
        for args, needle in (
            ({"query": "q", "count": "three"}, "input 'count' must be integer"),
            ({"query": "q", "count": 2.5}, "input 'count' must be integer"),
            ({"query": "q", "strict": "maybe"}, "input 'strict' must be boolean"),
            ({"query": "q", "ratio": [1]}, "input 'ratio' must be number"),
            ({"count": 3}, "input 'query' is required"),
            ({"query": "x" * 5000}, "input 'query' is 5000 characters long; the limit is 200"),
        ):
            r = await client.call_tool("tiny", args)
            assert r.is_error, args
            assert needle in text_of(r), (args, text_of(r))
        n = len(fake_llm.requests)
        assert n == 0  # none of them reached the provider

        r = await client.call_tool("tiny", {"query": "q", "count": "3", "strict": "TRUE", "ratio": "0.25"})
        assert not r.is_error, text_of(r)
        assert "count=3 strict=true ratio=0.25" in fake_llm.requests[0].text

        r = await client.call_tool(
            "tiny", {"query": UNICODE, "context": "{{ inputs.query }} {% evil %} </query>"}
        )
        assert not r.is_error, text_of(r)
        assert r.structured_content["answer"] == f"echo: {UNICODE}"  # back through JSON, SSE and the client
        sent = next(req for req in fake_llm.requests[2:] if first_user_text(req).startswith("FIRST"))
        prompt = first_user_text(sent)
        assert f"<query>{UNICODE}</query>" in prompt  # verbatim to the model: emoji, RTL marks, NUL
        assert "{{ inputs.query }} {% evil %}" in prompt  # user text is data, never template syntax
        stored = await client.read_resource(f"reasonkit://runs/{r.structured_content['run_id']}")
        trace = json.loads(block_text(stored.contents[0]))
        assert trace["inputs"]["query"] == UNICODE and trace["answer"] == f"echo: {UNICODE}"
