"""A SIGHUP reload never leaves fewer auth guards than a start would: an emptied token file keeps the
previous tokens (and says so in the log), against a real `rk serve-mcp` subprocess (issue 23, hole 1)."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, poll, rpc
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio

TOKEN = "token-A-0123456789abcdef"


async def test_emptied_token_file_on_reload_keeps_the_tokens(server_env, fake_llm, proto_dir, tmp_path):
    fake_llm.default = routed({})
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    cfg = tmp_path / "config.toml"
    cfg.write_text(cfg.read_text() + f"[security]\nauth_tokens_file = {json.dumps(str(tokens))}\n")
    srv = HttpServer(server_env)
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            authed = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}
            before = await http.post(f"{srv.url}/mcp", headers=MCP_HEADERS, json=rpc("ping"))
            assert before.status_code == 401
            tokens.write_text("# all tokens removed by mistake\n")
            srv.proc.send_signal(signal.SIGHUP)
            await poll(lambda: "reloaded:" in srv.log() or "reload failed" in srv.log())
            r = await http.post(f"{srv.url}/mcp", headers=MCP_HEADERS, json=rpc("ping"))
            assert r.status_code == 401, r.text[:200]
            assert (await http.get(f"{srv.url}/runs")).status_code == 401
            ok = await http.post(f"{srv.url}/mcp", headers=authed, json=rpc("ping"))
            assert ok.status_code == 200, srv.log()[-3000:]
            assert "no bearer token" in srv.log()
    finally:
        assert srv.stop() == 0
