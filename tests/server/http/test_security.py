"""Inbound security in HTTP mode: bearer tokens, Host/Origin (DNS rebinding), body size, rate
limit, the non-loopback bind refusal, and secrets that must never show up in logs, traces, /metrics,
`rk config show` or error messages. In-process (ASGI) for the rules, real subprocesses for the
start-up refusal, the remote bind and the secret hunt."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from reasonkit.errors import SecurityError
from reasonkit.principal import LOCAL, Principal, token_name
from reasonkit.server.capacity.rate_limits import RateLimiter
from reasonkit.server.http.apps import build_http_app, build_side_app
from reasonkit.server.http.gate import Gate
from reasonkit.server.http.security import SecurityPolicy, bearer_token, load_tokens, secret_values
from tests.fakes.fake_llm import Reply
from tests.server.conftest import first_user_text, make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call, metric, rpc, run
from tests.server.procs import HttpServer, free_port, rk_command

pytestmark = pytest.mark.anyio

TOKEN = "tok-0123456789abcdef0123456789abcdef"
OTHER = "tok-fedcba9876543210fedcba9876543210"


def core_with(
    make_server,
    fake_llm,
    tmp_path,
    host: str = "127.0.0.1",
    environ: dict[str, str] | None = None,
    **security,
):
    s = make_settings(fake_llm, tmp_path / "data")
    for k, v in security.items():
        setattr(s.security, k, v)
    core = make_server(settings=s)
    core.security = SecurityPolicy.from_settings(s, host, environ or {})
    return core


def error_of(resp: httpx.Response) -> dict:
    body = resp.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None, body
    return body["error"]


# ----------------------------------------------------------------------------- Host / Origin
async def test_host_and_origin_on_a_loopback_bind(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = core_with(
        make_server,
        fake_llm,
        tmp_path,
        allowed_origins=["https://app.example"],
        allowed_hosts=["rk.internal"],
    )
    app = build_http_app(core, "127.0.0.1")
    async with asgi_client(app) as http:
        ok = await http.post("/mcp", headers=MCP_HEADERS, json=rpc("tools/list"))
        assert ok.status_code == 200 and any(t["name"] == "tiny" for t in answer(ok)["result"]["tools"])
        for host in ("localhost:9100", "127.0.0.1", "127.0.0.2:9100", "[::1]:9100", "rk.internal:443"):
            r = await http.post("/mcp", headers={**MCP_HEADERS, "host": host}, json=rpc("ping"))
            assert r.status_code == 200, (host, r.text)
        evil = await http.post("/mcp", headers={**MCP_HEADERS, "host": "evil.example.com"}, json=rpc("ping"))
        assert evil.status_code == 421 and error_of(evil)["data"]["reason"] == "invalid_host"
        assert "allowed_hosts" in error_of(evil)["message"]
        for origin, status in (
            ("http://evil.example", 403),
            ("null", 403),
            ("http://localhost:6274", 200),
            ("https://app.example", 200),
        ):
            r = await http.post("/mcp", headers={**MCP_HEADERS, "origin": origin}, json=rpc("ping"))
            assert r.status_code == status, (origin, r.text)
        bad = await http.post(
            "/mcp", headers={**MCP_HEADERS, "origin": "http://evil.example"}, json=rpc("ping")
        )
        assert (
            error_of(bad)["data"]["reason"] == "invalid_origin"
            and "allowed_origins" in error_of(bad)["message"]
        )
        # /metrics is guarded too; the probes are not (they address the pod by IP)
        assert (await http.get("/metrics", headers={"host": "evil.example.com"})).status_code == 421
        assert (await http.get("/health/ready", headers={"host": "evil.example.com"})).status_code == 200
        body = (await http.get("/metrics")).text
    assert metric(body, 'reasonkit_http_rejected_total{reason="invalid_host"}') == 2
    assert metric(body, 'reasonkit_http_rejected_total{reason="invalid_origin"}') == 3


def test_host_rules_on_other_binds():
    open_ = SecurityPolicy(loopback=False)
    assert open_.host_ok("anything.example:9100") and open_.host_ok(
        None
    )  # no allowed_hosts: Host not checked (warned at start)
    assert not open_.origin_ok("http://evil.example") and open_.origin_ok(None)
    assert not open_.origin_ok("http://localhost:3000")  # local origins only for loopback binds
    p = SecurityPolicy(
        loopback=False,
        allowed_hosts=("reasonkit.example.com", "*.svc.cluster.local", "api.example:8443"),
        allowed_origins=("https://ui.example:*", "*"),
    )
    assert p.host_ok("reasonkit.example.com") and p.host_ok("REASONKIT.example.com:443")
    assert p.host_ok("rk.default.svc.cluster.local:9100") and not p.host_ok("svc.cluster.local")
    assert p.host_ok("api.example:8443") and not p.host_ok("api.example:8080")
    assert p.host_ok("10.1.2.3:9100") and p.host_ok("[fd00::1]:9100")  # IP hosts cannot be rebound
    assert not p.host_ok("evil.example.com") and not p.host_ok(None)
    assert p.origin_ok("https://anything.example")  # "*"
    q = SecurityPolicy(loopback=False, allowed_origins=("https://ui.example:*",))
    assert (
        q.origin_ok("https://ui.example")
        and q.origin_ok("https://ui.example:8443")
        and not q.origin_ok("https://ui.example.evil:1")
    )


# ----------------------------------------------------------------------------- tokens
def test_tokens_from_env_and_file(tmp_path, fake_llm):
    s = make_settings(fake_llm, tmp_path / "data")
    f = tmp_path / "tokens"
    f.write_text(f"# rotated 2025-01-01\n\n  {TOKEN}  \n# {OTHER} (disabled)\nshort-token\n")
    f.chmod(0o600)
    s.security.auth_tokens_file = str(f)
    assert load_tokens(s, {"REASONKIT_AUTH_TOKENS": f" {OTHER} ,, {TOKEN}"}) == [OTHER, TOKEN, "short-token"]
    s.security.auth_tokens_file = str(tmp_path / "missing")
    with pytest.raises(SecurityError, match="auth_tokens_file = .*missing: cannot be read"):
        load_tokens(s, {})
    s.security.auth_tokens_file = None
    with pytest.raises(SecurityError, match="whitespace or control"):
        load_tokens(s, {"REASONKIT_AUTH_TOKENS": "two words"})
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer   abc ") == "abc"
    assert (
        bearer_token("Basic abc") is None and bearer_token("Bearer ") is None and bearer_token(None) is None
    )


def test_named_tokens_give_their_principal(tmp_path, fake_llm):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.admin_principals = ["ops"]
    f = tmp_path / "tokens"
    f.write_text(f"alice:{TOKEN}\nops:{OTHER}\n")
    f.chmod(0o600)
    s.security.auth_tokens_file = str(f)
    unnamed = "u" * 40
    policy = SecurityPolicy.from_settings(s, "127.0.0.1", {"REASONKIT_AUTH_TOKENS": unnamed})
    alice, ops, anon = (policy.principal(t) for t in (TOKEN, OTHER, unnamed))
    assert alice == Principal("alice") and ops == Principal("ops", admin=True)
    assert anon is not None and anon.name == token_name(unnamed.encode()) and not anon.admin
    assert unnamed not in anon.name and policy.principal(f"alice:{TOKEN}") is None  # the token alone
    assert policy.principal("wrong") is None and policy.principal(None) is None
    assert SecurityPolicy().principal(None) == LOCAL and LOCAL.admin  # no tokens: one user, `local`
    assert TOKEN in secret_values(s, load_tokens(s, {}))  # the token part is what logs must not show


async def test_bearer_tokens_in_process(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = core_with(make_server, fake_llm, tmp_path, environ={"REASONKIT_AUTH_TOKENS": f"{TOKEN},{OTHER}"})
    app = build_http_app(core, "127.0.0.1")
    async with asgi_client(app) as http:
        missing = await http.post("/mcp", headers=MCP_HEADERS, json=rpc("tools/list"))
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="reasonkit"'
        assert (
            error_of(missing)["data"]["reason"] == "unauthorized"
            and "Authorization: Bearer" in error_of(missing)["message"]
        )
        wrong = await http.post(
            "/mcp", headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN[:-1]}x"}, json=rpc("tools/list")
        )
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert wrong.headers["www-authenticate"].startswith('Bearer realm="reasonkit"')
        basic = await http.post(
            "/mcp", headers={**MCP_HEADERS, "authorization": "Basic dXNlcjpwYXNz"}, json=rpc("ping")
        )
        assert basic.status_code == 401 and "error=" not in basic.headers["www-authenticate"]
        for tok in (TOKEN, OTHER):
            ok = await http.post(
                "/mcp",
                headers={**MCP_HEADERS, "authorization": f"bearer {tok}"},
                json=call("tiny", {"query": "q"}),
            )
            assert ok.status_code == 200 and answer(ok)["result"]["structuredContent"]["status"] == "complete"
        # probes stay open; /metrics and /health need the token on the main port ...
        assert (await http.get("/health/live")).status_code == 200 and (
            await http.get("/health/ready")
        ).status_code == 200
        assert (await http.get("/metrics")).status_code == 401 and (
            await http.get("/health")
        ).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 200
        # ... unless [security] public_metrics
        core.security = SecurityPolicy(tokens=core.security.tokens, public_metrics=True)
        assert (await http.get("/metrics")).status_code == 200 and (
            await http.post("/mcp", headers=MCP_HEADERS, json=rpc("ping"))
        ).status_code == 401
    async with asgi_client(build_side_app(core), "http://127.0.0.1:9101") as side:  # the side port never asks
        body = (await side.get("/metrics")).text
    assert metric(body, 'reasonkit_http_rejected_total{reason="unauthorized"}') == 5
    assert metric(body, 'reasonkit_http_rejected_total{reason="invalid_token"}') == 1


def test_refusal_and_allowance_of_remote_binds(fake_llm, tmp_path):
    s = make_settings(fake_llm, tmp_path / "data")
    with pytest.raises(SecurityError) as err:
        SecurityPolicy.from_settings(s, "0.0.0.0", {}).check_bind("0.0.0.0", 9100, s)
    assert "REASONKIT_AUTH_TOKENS" in str(err.value) and "allow_unauthenticated_remote = true" in str(
        err.value
    )
    SecurityPolicy.from_settings(s, "0.0.0.0", {"REASONKIT_AUTH_TOKENS": TOKEN}).check_bind(
        "0.0.0.0", 9100, s
    )
    SecurityPolicy.from_settings(s, "127.0.0.2", {}).check_bind(
        "127.0.0.2", 9100, s
    )  # all of 127/8 is loopback
    s.security.allow_unauthenticated_remote = True
    SecurityPolicy.from_settings(s, "0.0.0.0", {}).check_bind("0.0.0.0", 9100, s)


def test_remote_bind_without_tokens_refuses_to_start(tmp_path):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REASONKIT_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run(
        [*rk_command(), "serve-mcp", "--host", "0.0.0.0", "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert (
        r.stderr.startswith("rk: error: refusing to serve HTTP on 0.0.0.0:") and "Traceback" not in r.stderr
    )
    assert "REASONKIT_AUTH_TOKENS" in r.stderr and "auth_tokens_file" in r.stderr
    assert (
        "allow_unauthenticated_remote = true" in r.stderr
        and "REASONKIT_ALLOW_UNAUTHENTICATED=true" in r.stderr
    )
    assert not (tmp_path / "data").exists()  # refused before opening anything
    bad = subprocess.run(
        [*rk_command(), "serve-mcp", "--port", str(port)],
        capture_output=True,
        text=True,
        env={**env, "REASONKIT_AUTH_TOKENS_FILE": str(tmp_path / "nope")},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "auth_tokens_file" in bad.stderr and "cannot be read" in bad.stderr


# ----------------------------------------------------------------------------- body size
async def test_oversized_bodies_get_413(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = core_with(make_server, fake_llm, tmp_path, max_request_size_mb=0.01)  # 10 KiB
    app = build_http_app(core, "127.0.0.1")
    big = json.dumps(call("tiny", {"query": "q", "context": "x" * 20_000}))
    async with asgi_client(app) as http:
        r = await http.post("/mcp", headers=MCP_HEADERS, content=big)
        assert r.status_code == 413 and error_of(r)["data"]["reason"] == "too_large"
        assert "max_request_size_mb" in error_of(r)["message"]
        small = await http.post(
            "/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q", "context": "x" * 5_000})
        )
        assert small.status_code == 200 and answer(small)["result"]["isError"] is False

    # A chunked upload declares no length: the bytes are counted as they arrive.
    reached: list[bool] = []

    async def inner(scope, receive, send):
        reached.append(True)

    guard = Gate(inner, lambda: core.security)
    chunks = [{"type": "http.request", "body": b"x" * 4096, "more_body": True} for _ in range(4)]
    sent: list[dict] = []

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(b"host", b"127.0.0.1:9100"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
    }
    await guard(scope, receive, send)
    assert not reached and sent[0]["status"] == 413 and b"too_large" in sent[1]["body"]


# ----------------------------------------------------------------------------- rate limit
async def test_rate_limit_per_client_with_retry_after(make_server, fake_llm, tmp_path):
    core = core_with(
        make_server,
        fake_llm,
        tmp_path,
        rate_limit_per_minute=3,
        environ={"REASONKIT_AUTH_TOKENS": f"{TOKEN},{OTHER}"},
    )
    app = build_http_app(core, "127.0.0.1")
    auth = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}
    async with asgi_client(app) as http:
        codes = [(await http.post("/mcp", headers=auth, json=rpc("ping"))).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = await http.post("/mcp", headers=auth, json=rpc("ping"))
        assert limited.status_code == 429 and error_of(limited)["data"]["reason"] == "rate_limited"
        assert (
            int(limited.headers["retry-after"]) >= 1
            and "rate_limit_per_minute" in error_of(limited)["message"]
        )
        # another token from the same address has its own budget; probes are never limited
        assert (
            await http.post(
                "/mcp", headers={**MCP_HEADERS, "authorization": f"Bearer {OTHER}"}, json=rpc("ping")
            )
        ).status_code == 200
        assert [(await http.get("/health/ready")).status_code for _ in range(5)] == [200] * 5
        # failed authentications spend the address's budget (a brake on guessing tokens)
        codes = [
            (
                await http.post(
                    "/mcp", headers={**MCP_HEADERS, "authorization": "Bearer guess"}, json=rpc("ping")
                )
            ).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 1234))  # another client address
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100") as other:
            assert (
                await other.post(
                    "/mcp", headers={**MCP_HEADERS, "authorization": "Bearer guess"}, json=rpc("ping")
                )
            ).status_code == 401


def test_rate_limiter_refills():
    now = [0.0]
    lim = RateLimiter(clock=lambda: now[0])
    assert [lim.hit("a", 60) for _ in range(60)] == [0.0] * 60
    assert lim.hit("a", 60) == pytest.approx(1.0)
    now[0] = 0.5
    assert lim.hit("a", 60) == pytest.approx(0.5)
    now[0] = 1.0
    assert lim.hit("a", 60) == 0.0 and lim.hit("b", 60) == 0.0


# -------------------------------------------------------------------------- subprocess: remote bind + secrets
SECRET_KEY = "PLANTEDopenaiKEYzq81xv"
SECRET_REDIS = "PLANTEDredisPASSk39w"
SECRET_TOKEN = "PLANTEDbearerTOKENm2u7c5d0a4"


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_remote_bind_with_tokens_and_no_secret_anywhere(server_env, fake_llm, tmp_path, log_format):
    def handler(req):
        if "AUTHFAIL" in first_user_text(req):  # a provider that quotes the key back in its error
            return Reply(
                status=401,
                text=f"Incorrect API key provided: {SECRET_KEY}. Authorization: Bearer {SECRET_KEY}",
            )
        return routed({})(req)

    fake_llm.default = handler
    env = {
        **server_env,
        "REASONKIT_AUTH_TOKENS": SECRET_TOKEN,
        "OPENAI_API_KEY": SECRET_KEY,
        # nothing listens: the cache degrades
        "REDIS_URL": f"redis://default:{SECRET_REDIS}@127.0.0.1:{free_port()}/0",
        "LLM_TEMPERATURE": "0",  # cacheable calls, so the cache really tries Redis
        "LOG_FORMAT": log_format,
    }
    srv = HttpServer(env, "--host", "0.0.0.0")  # non-loopback bind: starts because tokens are set
    seen: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            r = await http.post(f"{srv.url}/mcp", headers=MCP_HEADERS, json=rpc("tools/list"))
            assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="reasonkit"'
            r = await http.post(
                f"{srv.url}/mcp",
                headers={**MCP_HEADERS, "authorization": f"Bearer {SECRET_TOKEN}x"},
                json=rpc("tools/list"),
            )
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
            seen += [r.text, str(r.headers)]
            assert (await http.get(f"{srv.url}/metrics")).status_code == 401
            assert (await http.get(f"{srv.url}/health/ready")).status_code == 200
            side = f"http://127.0.0.1:{srv.metrics_port}"
            health = await http.get(f"{side}/health")
            seen.append(health.text)

        headers = {"Authorization": f"Bearer {SECRET_TOKEN}"}
        async with (
            create_mcp_http_client(headers=headers) as hc,
            Client(streamable_http_client(f"{srv.url}/mcp", http_client=hc)) as client,
        ):
            ok = await client.call_tool("tiny", {"query": "q"})
            assert not ok.is_error and ok.structured_content["status"] == "complete"
            bad = await client.call_tool("tiny", {"query": "AUTHFAIL"})
            assert bad.is_error
            text = "".join(c.text for c in bad.content if c.type == "text")
            assert "HTTP 401" in text and "check the API key" in text
            seen.append(text + json.dumps(bad.structured_content))
        async with (
            create_mcp_http_client() as hc
        ):  # the real client without a token gets the server's message
            with pytest.raises(Exception) as err:
                with anyio.fail_after(20):
                    async with Client(
                        streamable_http_client(f"{srv.url}/mcp", http_client=hc), mode="legacy"
                    ) as client:
                        await client.list_tools()
            assert (
                "MCPError(-32001, \"authentication required: send the header 'Authorization: Bearer <token>'"
                in repr(err.value)
            ), err.value
        async with httpx.AsyncClient(timeout=15) as http:
            metrics_body = (await http.get(f"http://127.0.0.1:{srv.metrics_port}/metrics")).text
            assert metric(metrics_body, 'reasonkit_http_rejected_total{reason="invalid_token"}') == 1
            seen.append(metrics_body)
    finally:
        code = srv.stop()
    log = await anyio.Path(srv.stderr.name).read_text()
    assert code == 0, log
    assert "ReasonKit MCP server on http://0.0.0.0:" in log and "bearer-token authentication on" in log
    assert "Redis" in log  # the cache did try the (planted) Redis URL and reported it
    if log_format == "json":
        lines = [json.loads(line) for line in log.splitlines() if line.strip()]
        assert lines and all("level" in x for x in lines)

    from reasonkit.store import SqliteRunStore

    with SqliteRunStore(Path(env["REASONKIT_DATA_DIR"]) / "runs.db") as store:
        runs = store.list()
        traces = [json.dumps(store.get(r["run_id"])) for r in runs]
    assert len(traces) == 2 and any("HTTP 401" in t for t in traces)
    shown = [await run([*rk_command(), "config", "show", "--format", fmt], env) for fmt in ("toml", "json")]
    assert all(r.returncode == 0 for r in shown)
    assert '"url": "********"' in shown[1].stdout

    haystacks = {
        "log": log,
        "traces": "\n".join(traces),
        "responses": "\n".join(seen),
        "config show": "".join(r.stdout + r.stderr for r in shown),
    }
    for where, text in haystacks.items():
        for secret in (SECRET_KEY, SECRET_REDIS, SECRET_TOKEN):
            assert secret not in text, f"{secret} leaked into {where}"
