"""Connection hygiene (issue 12, point 2) against a real `rk serve-mcp --port`: a client trickling its
headers is disconnected, a slow body gets 408, a client that disconnects mid-body is logged at info
without a traceback, X-Forwarded-For from an untrusted peer does not move a client to another
rate-limit bucket (and is believed from a trusted proxy), stateful sessions are capped and expire
when idle."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import LEGACY, MCP_HEADERS, asgi_client, rpc
from tests.server.procs import HttpServer

PING = json.dumps(rpc("ping")).encode()
RATE = 5


def configure(env: dict[str, str], server: str, extra: str = "") -> dict[str, str]:
    cfg = Path(env["REASONKIT_CONFIG"])
    text = cfg.read_text()
    assert text.rstrip().splitlines()[-2] == "[server]"
    cfg.write_text(text + server + "\n" + extra)
    return {**env, "LOG_LEVEL": "info"}


def closed_within(sock: socket.socket, secs: float) -> bool:
    """True when the server closes the connection within `secs` (whatever it sends first)."""
    sock.settimeout(secs)
    deadline = time.monotonic() + secs
    try:
        while time.monotonic() < deadline:
            if sock.recv(4096) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def head(port: int, length: int) -> bytes:
    return (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {LEGACY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_slow_clients_are_cut_off_and_disconnects_logged_quietly(server_env, fake_llm):
    fake_llm.default = routed({})
    srv = HttpServer(configure(server_env, "header_timeout_secs = 1\nbody_timeout_secs = 1"))
    try:
        # headers trickling in: the connection is closed (before any authentication or rate limit)
        with socket.create_connection(("127.0.0.1", srv.port)) as slow:
            slow.sendall(b"POST /mcp HTTP/1.1\r\nHo")
            assert closed_within(slow, 10), "a client that never finishes its headers keeps its connection"
        # a body that does not arrive: 408
        with socket.create_connection(("127.0.0.1", srv.port)) as slow_body:
            slow_body.sendall(head(srv.port, len(PING)) + PING[:5])
            slow_body.settimeout(10)
            reply = b""
            while b"body_timeout_secs" not in reply:
                chunk = slow_body.recv(65536)
                assert chunk, reply[:300]
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        # a client that disconnects in the middle of its body: one info line, no traceback
        with socket.create_connection(("127.0.0.1", srv.port)) as gone:
            gone.sendall(head(srv.port, len(PING)) + PING[:5])
        log_until(srv, "the client disconnected")
    finally:
        assert srv.stop() == 0
    log = Path(srv.stderr.name).read_text()
    assert "Traceback" not in log and "| ERROR" not in log, log[-3000:]


def log_until(srv: HttpServer, text: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while text not in srv.log():
        assert time.monotonic() < deadline, srv.log()[-2000:]
        time.sleep(0.05)


def forwarded_statuses(srv: HttpServer) -> list[int]:
    """Twice the rate limit of pings from 127.0.0.1, each claiming another client address."""
    with httpx.Client(timeout=10) as http:
        return [
            http.post(
                f"{srv.url}/mcp",
                headers={**MCP_HEADERS, "x-forwarded-for": f"203.0.113.{i + 1}"},
                content=PING,
            ).status_code
            for i in range(2 * RATE)
        ]


def test_forwarded_headers_are_believed_only_from_trusted_proxies(server_env, fake_llm):
    fake_llm.default = routed({})
    limit = f"[security]\nrate_limit_per_minute = {RATE}\n"
    base = Path(server_env["REASONKIT_CONFIG"]).read_text()
    srv = HttpServer(configure(server_env, "", limit))  # no trusted proxy: the peer's address counts
    try:
        untrusted = forwarded_statuses(srv)
    finally:
        assert srv.stop() == 0
    log = Path(srv.stderr.name).read_text()
    assert untrusted == [200] * RATE + [429] * RATE, untrusted
    assert "203.0.113." not in log  # the forwarded value was neither used nor written to the log

    Path(server_env["REASONKIT_CONFIG"]).write_text(base)
    srv = HttpServer(configure(server_env, 'trusted_proxies = ["127.0.0.0/8"]', limit))
    try:
        trusted = forwarded_statuses(srv)
    finally:
        assert srv.stop() == 0
    assert trusted == [200] * (2 * RATE)  # behind a trusted proxy each forwarded client has its bucket


def test_stateful_sessions_are_capped_and_expire_when_idle(server_env, fake_llm):
    fake_llm.default = routed({})
    env = configure(server_env, "max_sessions = 2\nsession_idle_secs = 1")
    srv = HttpServer(env, "--stateful")
    init = rpc(
        "initialize",
        {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    )
    headers = {k: v for k, v in MCP_HEADERS.items() if k != "mcp-protocol-version"}
    try:
        with httpx.Client(timeout=10) as http:
            first = http.post(f"{srv.url}/mcp", headers=headers, json=init)
            second = http.post(f"{srv.url}/mcp", headers=headers, json=init)
            third = http.post(f"{srv.url}/mcp", headers=headers, json=init)
            assert first.status_code == second.status_code == 200, (first.text, second.text)
            assert third.status_code == 503, third.text[:300]
            session = first.headers["mcp-session-id"]
            # no request on the session: it is closed after session_idle_secs
            deadline = time.monotonic() + 15
            while True:
                time.sleep(1.5)  # longer than session_idle_secs, so the session is idle in between
                ping = http.post(
                    f"{srv.url}/mcp",
                    headers={**MCP_HEADERS, "mcp-session-id": session},
                    json=rpc("ping", id=7),
                )
                if ping.status_code == 404:
                    break
                assert time.monotonic() < deadline, "the idle session was never closed"
            # a closed session frees its place
            assert http.post(f"{srv.url}/mcp", headers=headers, json=init).status_code == 200
    finally:
        assert srv.stop() == 0


@pytest.mark.anyio
async def test_host_headers_are_parsed_strictly(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = make_server(settings=make_settings(fake_llm, tmp_path / "data"))
    core.security = SecurityPolicy.from_settings(core.settings, "127.0.0.1", {})
    app = build_http_app(core, "127.0.0.1")
    async with asgi_client(app) as http:
        ok = await http.post("/mcp", headers={**MCP_HEADERS, "host": "localhost:9100"}, content=PING)
        assert ok.status_code == 200
        for bad in ("localhost:abc", "[::1]x", "localhost:80:81", "user@localhost", "localhost:99999"):
            r = await http.post("/mcp", headers={**MCP_HEADERS, "host": bad}, content=PING)
            assert r.status_code == 400, (bad, r.status_code)
            assert "malformed Host header" in r.json()["error"]["message"]
        two = [*MCP_HEADERS.items(), ("host", "localhost"), ("host", "evil.example")]
        r = await http.post("/mcp", headers=two, content=PING)
        assert r.status_code == 400 and "several Host headers" in r.json()["error"]["message"]
