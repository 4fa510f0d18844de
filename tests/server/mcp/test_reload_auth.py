"""A SIGHUP reload never leaves fewer auth guards than a start would: an emptied token file keeps the
previous tokens (and says so in the log), against a real `rk serve-mcp` subprocess (issue 23, hole 1);
OAuth (`[server.oauth]`) stays on the same way."""

from __future__ import annotations

import json
import signal

import httpx
import pytest
from loguru import logger

from reasonkit.config import load_settings
from reasonkit.server.http.security import SecurityPolicy
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


ISSUER, AUDIENCE = "https://idp.example.com/realms/rk", "https://rk.example.com/mcp"


def oauth_env(data_dir, **env: str) -> dict[str, str]:
    return {"REASONKIT_DATA_DIR": str(data_dir), "LOCAL_MODEL_AUTO": "false", **env}


async def test_oauth_stays_on_across_reloads(make_server, tmp_path):
    """Settings without `[server.oauth]` keep the verifier (an error says so); the same settings keep
    it with the keys it fetched; a plain-http issuer makes the reload fail as a whole."""
    on = oauth_env(tmp_path, REASONKIT_OAUTH_ISSUER=ISSUER, REASONKIT_OAUTH_AUDIENCE=AUDIENCE)
    environ = dict(on)
    settings = load_settings(environ=environ)
    core = make_server(settings=settings)
    core.settings_loader = lambda: load_settings(environ=environ)
    core.bind_host = "0.0.0.0"
    core.security = SecurityPolicy.from_settings(settings, "0.0.0.0", {})
    verifier = core.security.oauth
    assert verifier is not None and core.security.auth
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR", format="{message}")
    try:
        assert await core.reload() is True
        assert core.security.oauth is verifier  # unchanged settings: the same verifier and its keys
        environ.clear()
        environ.update(oauth_env(tmp_path))  # OAuth gone, no tokens, a non-loopback bind
        assert await core.reload() is True
        assert core.security.oauth is verifier and core.security.auth
        assert any("have no [server.oauth]" in line and ISSUER in line for line in lines)
        environ.update(on, REASONKIT_OAUTH_ISSUER="http://idp.example.com")
        assert await core.reload() is False
        assert any("reload failed" in line and "must use https://" in line for line in lines)
        assert core.security.oauth is verifier
        environ.update(REASONKIT_OAUTH_ISSUER="https://other.example.com")
        assert await core.reload() is True
        assert core.security.oauth is not None and core.security.oauth.issuer == "https://other.example.com"
    finally:
        logger.remove(sink)


async def test_an_emptied_token_file_keeps_the_tokens_beside_oauth(make_server, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    environ = oauth_env(
        tmp_path,
        REASONKIT_OAUTH_ISSUER=ISSUER,
        REASONKIT_OAUTH_AUDIENCE=AUDIENCE,
        REASONKIT_AUTH_TOKENS_FILE=str(tokens),
    )
    settings = load_settings(environ=environ)
    core = make_server(settings=settings)
    core.settings_loader = lambda: load_settings(environ=environ)
    core.bind_host = "0.0.0.0"
    core.security = SecurityPolicy.from_settings(settings, "0.0.0.0", {})
    tokens.write_text("# emptied by mistake\n")
    assert await core.reload() is True
    assert core.security.token_id(TOKEN) is not None and core.security.oauth is not None
