"""OAuth 2.1 resource server (issue 23, section 2) against a real OpenID provider (oidc-provider under
Node, tests/server/http/oidc.py): access tokens minted by its token endpoint run tools as their
subject, beside the static tokens; runs stay their principal's; the Protected Resource Metadata
(RFC 9728) and the `WWW-Authenticate` challenges follow the MCP authorization spec. The refusals of
bad tokens and the key handling are in test_oauth_tokens.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reasonkit.config.oauth import OAuthSettings
from reasonkit.principal import oauth_name
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings
from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call, rpc
from tests.server.http import oidc
from tests.server.http.test_principals import five_paths

pytestmark = pytest.mark.anyio
STATIC = "static-token-" + "s" * 30
METADATA = "/.well-known/oauth-protected-resource"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc.Provider]:
    oidc.require()
    provider = oidc.Provider(tmp_path_factory.mktemp("idp"))
    yield provider
    provider.stop()


def oauth_server(make_server, fake_llm, tmp_path: Path, issuer: str, *, scopes=(oidc.SCOPE,), admins=()):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.oauth = OAuthSettings(issuer=issuer, audience=oidc.AUDIENCE, required_scopes=list(scopes))
    s.server.admin_principals = list(admins)
    core = make_server(settings=s)
    core.bind_host = "127.0.0.1"
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {"REASONKIT_AUTH_TOKENS": f"ops:{STATIC}"})
    return core


def auth(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "authorization": f"Bearer {token}"}


async def test_an_access_token_runs_a_tool_as_its_subject(make_server, fake_llm, tmp_path, idp):
    core = oauth_server(make_server, fake_llm, tmp_path, idp.issuer)
    token = idp.mint("alice")
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        r = await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=auth(token))
        assert r.status_code == 200, r.text
        run_id = answer(r)["result"]["structuredContent"]["run_id"]
        # the static tokens keep working beside OAuth
        static = await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=auth(STATIC))
        assert static.status_code == 200, static.text
    assert core.service.store is not None
    trace = core.service.store.get(run_id)
    assert trace is not None and trace["owner"] == oauth_name(idp.issuer, "alice") == f"{idp.issuer}#alice"
    traces = (core.service.store.get(r["run_id"]) for r in core.service.store.list())
    owners = {t["owner"] for t in traces if t}
    assert owners == {f"{idp.issuer}#alice", "ops"}


async def test_one_subject_cannot_see_anothers_run_and_the_admin_scope_sees_all(
    make_server, fake_llm, tmp_path, idp
):
    core = oauth_server(make_server, fake_llm, tmp_path, idp.issuer)
    alice, bob = idp.mint("alice"), idp.mint("bob")
    root = idp.mint("root", scope=f"{oidc.SCOPE} {oidc.ADMIN}")
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        started = answer(await http.post("/mcp", json=call("tiny", {"query": "mine"}), headers=auth(alice)))
        run_id = started["result"]["structuredContent"]["run_id"]
        owner = await five_paths(core, http, alice, run_id)
        assert owner[2] == "True" and owner[3].startswith("200") and owner[4].startswith("200"), owner
        other = await five_paths(core, http, bob, run_id)
        assert other == await five_paths(core, http, bob, "0" * len(run_id))
        assert other[2] == "False" and other[3].startswith("404") and other[4].startswith("404")
        admin = await five_paths(core, http, root, run_id)
        assert admin[2] == "True" and admin[3].startswith("200") and "no run" not in admin[0]
        # the static token's principal is another one again
        assert await five_paths(core, http, STATIC, run_id) == await five_paths(core, http, STATIC, "0" * 32)


async def test_an_oauth_principal_named_in_admin_principals_is_an_admin(make_server, fake_llm, tmp_path, idp):
    core = oauth_server(make_server, fake_llm, tmp_path, idp.issuer, admins=[oauth_name(idp.issuer, "bob")])
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        started = await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=auth(idp.mint("alice")))
        run_id = answer(started)["result"]["structuredContent"]["run_id"]
        seen = await http.get(f"/runs/{run_id}", headers=auth(idp.mint("bob")))
        assert seen.status_code == 200


async def test_protected_resource_metadata_names_the_issuer(make_server, fake_llm, tmp_path, idp):
    core = oauth_server(make_server, fake_llm, tmp_path, idp.issuer)
    expected = {
        "resource": oidc.AUDIENCE,
        "authorization_servers": [idp.issuer],
        "scopes_supported": [oidc.SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "ReasonKit",
    }
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for path in (METADATA, f"{METADATA}/mcp"):  # no token needed
            r = await http.get(path)
            assert r.status_code == 200 and r.json() == expected, (path, r.text)
        assert (await http.get(f"{METADATA}/elsewhere")).status_code == 404
        # the 401 points at the metadata; an MCP client follows it to the issuer
        r = await http.post("/mcp", json=rpc("ping"), headers=MCP_HEADERS)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and "error=" not in challenge
        assert f'resource_metadata="http://127.0.0.1:9100{METADATA}/mcp"' in challenge
        assert f'scope="{oidc.SCOPE}"' in challenge
        # ... and from there to the authorization server's metadata and its token endpoint
        issuer = (await http.get(f"{METADATA}/mcp")).json()["authorization_servers"][0]
    async with httpx.AsyncClient() as outside:
        server = (await outside.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    assert server["issuer"] == idp.issuer and server["token_endpoint"] == f"{idp.issuer}/token"


async def test_metadata_is_404_without_oauth(make_server, fake_llm, tmp_path):
    core = make_server()
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        assert (await http.get(METADATA)).status_code == 404
        assert (await http.get(f"{METADATA}/mcp")).status_code == 404
