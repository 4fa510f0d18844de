"""Access tokens that must not pass (issue 23, section 2), through the whole HTTP gate with a real
OpenID provider (tests/server/http/oidc.py): each gets 401 (403 for a missing scope) with the MCP
authorization spec's `WWW-Authenticate`, never a 500, and no token text reaches the log. The
issuer's key set is cached, refetched on an unknown key id at most once per `min_refresh_secs`, kept
when the issuer goes down; an issuer that is down or hangs gives 503 in bounded time."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from loguru import logger

from reasonkit.config.oauth import OAuthSettings
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.oauth_tokens import REFRESH_DEADLINE, TokenVerifier
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings
from tests.server.helpers import MCP_HEADERS, asgi_client, call, rpc
from tests.server.http import oidc

pytestmark = pytest.mark.anyio
METADATA = 'resource_metadata="http://127.0.0.1:9100/.well-known/oauth-protected-resource/mcp"'


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc.Provider]:
    oidc.require()
    provider = oidc.Provider(tmp_path_factory.mktemp("idp"))
    yield provider
    provider.stop()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


def oauth_core(make_server, fake_llm, tmp_path: Path, issuer: str, min_refresh: float | None = None):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.oauth = OAuthSettings(issuer=issuer, audience=oidc.AUDIENCE, required_scopes=[oidc.SCOPE])
    core = make_server(settings=s)
    core.bind_host = "127.0.0.1"
    policy = SecurityPolicy.from_settings(s, "127.0.0.1", {})
    if min_refresh is not None:
        verifier = TokenVerifier(s.server.oauth, min_refresh_secs=min_refresh)
        policy = dataclasses.replace(policy, oauth=verifier)
    core.security = policy
    return core


def auth(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "authorization": f"Bearer {token}"}


def bad_tokens(idp: oidc.Provider) -> dict[str, str]:
    now = int(time.time())
    other_key, _ = oidc.new_key("k9")
    claims = {"iss": idp.issuer, "aud": oidc.AUDIENCE, "sub": "alice", "scope": oidc.SCOPE, "exp": now + 300}
    return {
        "wrong aud": idp.mint("alice", resource="http://127.0.0.1:9999/other"),
        "wrong iss": idp.sign(iss="http://127.0.0.1:1/elsewhere"),
        "expired": idp.sign(exp=now - 120, iat=now - 420),
        "nbf in the future": idp.sign(nbf=now + 600),
        "no exp": idp.sign(exp=None),
        "no sub": idp.sign(sub=None),
        "alg none": oidc.unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims),
        "alg not a string": oidc.unsigned({"alg": ["RS256"], "kid": "k1"}, claims, b"x"),
        "kid not a string": oidc.unsigned({"alg": "RS256", "kid": {"k": 1}}, claims, b"x"),
        "HS256 signed with the public key": oidc.unsigned(
            {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}, claims, idp.public_pem()
        ),
        "signed by another key, kid k1": idp.sign(other_key),
        "unknown kid": idp.sign(other_key, kid="k9"),
        "garbage": "not-a-token-at-all",
        "three dots of garbage": "a.b.c",
        "header not json": oidc.b64(b"{nope") + "." + oidc.b64(b"{}") + ".sig",
        "huge": "a" * 20000 + ".b.c",
    }


async def test_bad_tokens_get_401_with_the_spec_challenge(make_server, fake_llm, tmp_path, idp, log_lines):
    core = oauth_core(make_server, fake_llm, tmp_path, idp.issuer)
    tokens = bad_tokens(idp)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        assert (await http.post("/mcp", json=rpc("ping"), headers=auth(idp.mint("alice")))).status_code == 200
        for what, token in tokens.items():
            for path in ("/mcp", "/runs"):
                r = await http.post(path, json=rpc("ping"), headers=auth(token))
                assert r.status_code == 401, (what, path, r.status_code, r.text[:300])
                challenge = r.headers["www-authenticate"]
                assert 'error="invalid_token"' in challenge and METADATA in challenge, (what, challenge)
                assert r.json()["error"]["data"]["reason"] == "invalid_token"
    logged = "\n".join(log_lines)
    assert "Traceback" not in logged
    for what, token in tokens.items():
        for part in {p for p in token.split(".") if len(p) > 8}:
            assert part not in logged, f"{what}: token text in the log"


async def test_a_token_without_the_required_scope_gets_403(make_server, fake_llm, tmp_path, idp):
    core = oauth_core(make_server, fake_llm, tmp_path, idp.issuer)
    token = idp.mint("carol", scope="reasonkit:other")
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        r = await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=auth(token))
    assert r.status_code == 403, r.text
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and f'scope="{oidc.SCOPE}"' in challenge
    assert METADATA in challenge


async def test_unknown_key_ids_refetch_the_key_set_once_per_interval(make_server, fake_llm, tmp_path, idp):
    core = oauth_core(make_server, fake_llm, tmp_path, idp.issuer, min_refresh=2.0)
    other_key, _ = oidc.new_key("x")
    forged = [idp.sign(other_key, kid=f"random-{i}") for i in range(20)]
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:

        async def send_all() -> list[int]:
            codes: list[int] = []

            async def one(token: str) -> None:
                codes.append((await http.post("/mcp", json=rpc("ping"), headers=auth(token))).status_code)

            async with anyio.create_task_group() as tg:
                for token in forged:
                    tg.start_soon(one, token)
            return codes

        before = idp.jwks_hits()
        assert (await http.post("/mcp", json=rpc("ping"), headers=auth(idp.mint("alice")))).status_code == 200
        assert idp.jwks_hits() == before + 1  # fetched once, then cached
        assert await send_all() == [401] * 20
        assert idp.jwks_hits() == before + 1  # within min_refresh_secs: no refetch at all
        await anyio.sleep(2.1)
        assert await send_all() == [401] * 20
        assert idp.jwks_hits() == before + 2  # 20 unknown kids at once: one refetch
        assert (await http.post("/mcp", json=rpc("ping"), headers=auth(idp.mint("bob")))).status_code == 200
        assert idp.jwks_hits() == before + 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_issuer_that_is_down_gives_503_not_500(make_server, fake_llm, tmp_path, log_lines):
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    core = oauth_core(make_server, fake_llm, tmp_path, issuer)
    token = oidc.sign_token(oidc.new_key("k1")[0], issuer, "k1")
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for _ in range(3):
            started = time.monotonic()
            r = await http.post("/mcp", json=rpc("ping"), headers=auth(token))
            assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
            assert r.json()["error"]["data"]["reason"] == "issuer_unavailable"
            assert time.monotonic() - started < 3
        no_token = await http.post("/mcp", json=rpc("ping"), headers=MCP_HEADERS)
        assert no_token.status_code == 401  # the challenge needs no issuer
    errors = [line for line in log_lines if line.startswith("OAuth:")]
    assert len(errors) == 1 and issuer in errors[0] and "ConnectError" in errors[0], log_lines


async def test_an_issuer_that_hangs_gives_503_in_bounded_time(make_server, fake_llm, tmp_path):
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        issuer = f"http://127.0.0.1:{silent.getsockname()[1]}"
        core = oauth_core(make_server, fake_llm, tmp_path, issuer)
        async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
            started = time.monotonic()
            token = oidc.sign_token(oidc.new_key("k1")[0], issuer, "k1")
            r = await http.post("/mcp", json=rpc("ping"), headers=auth(token))
            took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert took < REFRESH_DEADLINE + 2


async def test_keys_fetched_before_the_issuer_went_down_stay_in_use(
    make_server, fake_llm, tmp_path, log_lines
):
    oidc.require()
    own = oidc.Provider(tmp_path)
    try:
        core = oauth_core(make_server, fake_llm, tmp_path, own.issuer, min_refresh=0.1)
        first, second = own.mint("alice"), own.mint("bob")
        async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(first))).status_code == 200
            own.stop()
            await anyio.sleep(0.2)
            unknown = own.sign(oidc.new_key("z")[0], kid="z")
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(unknown))).status_code == 401
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(second))).status_code == 200
    finally:
        own.stop()
    assert any("stay in use" in line for line in log_lines), log_lines


async def test_accepted_audiences_add_aud_values(make_server, fake_llm, tmp_path, idp):
    """Entra ID v2 tokens name the API by its application (client) ID, not its URL."""
    app_id = "6f1c2b0e-3d4a-4e5f-8a9b-0c1d2e3f4a5b"
    token = idp.sign(aud=app_id)
    core = oauth_core(make_server, fake_llm, tmp_path, idp.issuer)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        assert (await http.post("/mcp", json=rpc("ping"), headers=auth(token))).status_code == 401
    core.settings.server.oauth.accepted_audiences = [app_id]
    core.security = SecurityPolicy.from_settings(core.settings, "127.0.0.1", {})
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        assert (await http.post("/mcp", json=rpc("ping"), headers=auth(token))).status_code == 200
        meta = (await http.get("/.well-known/oauth-protected-resource")).json()
    assert meta["resource"] == oidc.AUDIENCE  # the resource stays the URL


async def test_a_rotated_key_is_found_by_one_refetch(make_server, fake_llm, tmp_path):
    """The issuer restarts with a new signing key (the old one still published): a token with the new
    `kid` makes the server refetch the set once and pass, old tokens keep passing."""
    oidc.require()
    before = oidc.Provider(tmp_path, kid="k1")
    port = int(before.issuer.rsplit(":", 1)[1])
    old_token = before.mint("alice")
    core = oauth_core(make_server, fake_llm, tmp_path, before.issuer, min_refresh=0.1)
    try:
        async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(old_token))).status_code == 200
            before.stop()
            after = oidc.Provider(tmp_path, kid="k2", port=port, retired=[before.jwk])
            try:
                await anyio.sleep(0.2)
                new_token = after.mint("bob")
                assert (await http.post("/mcp", json=rpc("ping"), headers=auth(new_token))).status_code == 200
                assert after.jwks_hits() == 1
                assert (await http.post("/mcp", json=rpc("ping"), headers=auth(old_token))).status_code == 200
                assert after.jwks_hits() == 1
            finally:
                after.stop()
    finally:
        before.stop()


GARBAGE_KEYS: list[Any] = [
    "not an object",
    {"kty": "RSA", "n": "!!!", "e": "AQAB", "kid": "bad-n"},
    {"kty": "RSA", "kid": "no-n"},
    {"kty": 5, "kid": "odd-kty"},
    {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": ["RS256"], "kid": "list-alg"},
    {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "k1"},
    {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "bad-ec"},
]


async def test_malformed_key_sets_and_metadata_never_give_a_500(make_server, fake_llm, tmp_path):
    key, private = oidc.new_key("k1")
    public = {k: v for k, v in private.items() if k in ("kty", "n", "e", "kid", "use", "alg")}
    sets = {"keys": [*GARBAGE_KEYS, public]}

    def documents(issuer: str) -> dict[str, Any]:
        meta = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
        return {"/.well-known/openid-configuration": meta, "/jwks": sets}

    with oidc.issuer_serving(documents) as issuer:
        token = oidc.sign_token(key, issuer, "k1")
        core = oauth_core(make_server, fake_llm, tmp_path, issuer, min_refresh=0.0)
        async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(token))).status_code == 200
            sets["keys"] = GARBAGE_KEYS  # no usable key left: the kept keys still verify
            assert (await http.post("/mcp", json=rpc("ping"), headers=auth(token))).status_code == 200
    bad_meta: list[Callable[[str], Any]] = [
        lambda issuer: {"issuer": "https://elsewhere.example.com", "jwks_uri": f"{issuer}/jwks"},
        lambda issuer: {"issuer": issuer, "jwks_uri": "http://keys.example.com/jwks"},
        lambda issuer: {"issuer": issuer},
        lambda issuer: ["not", "an", "object"],
    ]
    for meta in bad_meta:

        def served(issuer: str, meta: Callable[[str], Any] = meta) -> dict[str, Any]:
            return {"/.well-known/openid-configuration": meta(issuer)}

        with oidc.issuer_serving(served) as issuer:
            core = oauth_core(make_server, fake_llm, tmp_path, issuer)
            token = oidc.sign_token(key, issuer, "k1")
            async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
                r = await http.post("/mcp", json=rpc("ping"), headers=auth(token))
            assert r.status_code == 503, r.text
