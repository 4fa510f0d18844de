"""Principals and isolation (issue 23, section 1): a run belongs to the principal that started it.
Another token gets exactly the answer it would get for a run id that does not exist, through all five
paths (`run_result`, `resources/read reasonkit://runs/...`, `/runs`, `/runs/{id}` on the main port and
on the side port); an admin principal sees every run."""

from __future__ import annotations

import re

import httpx
import pytest

from reasonkit.server.http.apps import build_http_app, build_side_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings
from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call, rpc

pytestmark = pytest.mark.anyio
A, B, ROOT = "a" * 40, "b" * 40, "r" * 40
TOKENS = f"alice:{A},{B},root:{ROOT}"


def server(make_server, fake_llm, tmp_path, admins=("root",)):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.admin_principals = list(admins)
    core = make_server(settings=s)
    core.bind_host = "127.0.0.1"
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {"REASONKIT_AUTH_TOKENS": TOKENS})
    return core


def auth(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "authorization": f"Bearer {token}"}


async def side_get(core, path: str, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_side_app(core))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9101") as http:
        return await http.get(path, headers={"authorization": f"Bearer {token}"})


async def five_paths(core, http: httpx.AsyncClient, token: str, run_id: str) -> list[str]:
    """What `token` is told about `run_id` through each path, with the id itself blanked out."""
    result = answer(await http.post("/mcp", json=call("run_result", {"run_id": run_id}), headers=auth(token)))
    read = answer(
        await http.post(
            "/mcp", json=rpc("resources/read", {"uri": f"reasonkit://runs/{run_id}"}), headers=auth(token)
        )
    )
    index = await http.get("/runs", headers=auth(token))
    page = await http.get(f"/runs/{run_id}", headers=auth(token))
    side = await side_get(core, f"/runs/{run_id}", token)
    seen = [
        str(result["result"]["content"][0]["text"]),
        str(read.get("error")),
        str(run_id in index.text),
        f"{page.status_code} {page.text}",
        f"{side.status_code} {side.text}",
    ]
    return [s.replace(run_id, "<id>") for s in seen]


async def test_another_principal_learns_nothing_about_a_run(make_server, fake_llm, tmp_path):
    core = server(make_server, fake_llm, tmp_path)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        started = answer(await http.post("/mcp", json=call("tiny", {"query": "mine"}), headers=auth(A)))
        run_id = started["result"]["structuredContent"]["run_id"]
        owner = await five_paths(core, http, A, run_id)
        assert owner[2] == "True" and owner[3].startswith("200") and owner[4].startswith("200")
        assert "no run" not in owner[0] and owner[1] == "None"
        other = await five_paths(core, http, B, run_id)
        missing = await five_paths(core, http, B, "0" * len(run_id))
        assert other == missing
        assert other[2] == "False" and other[3].startswith("404") and other[4].startswith("404")
        admin = await five_paths(core, http, ROOT, run_id)
        assert admin[2] == "True" and admin[3].startswith("200") and "no run" not in admin[0]


async def test_a_run_is_stored_with_its_principal(make_server, fake_llm, tmp_path):
    core = server(make_server, fake_llm, tmp_path)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for token in (A, B):
            await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=auth(token))
    assert core.service.store is not None
    owners = sorted(
        t["owner"] for t in (core.service.store.get(r["run_id"]) for r in core.service.store.list()) if t
    )
    assert owners[0] == "alice" and re.fullmatch(r"token-[0-9a-f]{12}", owners[1])


async def test_a_stateful_session_answers_only_its_principal(make_server, fake_llm, tmp_path):
    """Issue 23, hole 13: another token could use or DELETE a session it did not open."""
    core = server(make_server, fake_llm, tmp_path)
    core.settings.server.stateless_http = False
    init = rpc(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    )
    opening = {k: v for k, v in auth(A).items() if k != "mcp-protocol-version"}
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        opened = await http.post("/mcp", json=init, headers=opening)
        assert opened.status_code == 200, opened.text
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        unknown = {"mcp-session-id": "f" * 32}
        for token in (B, ROOT):  # an admin sees every run, but a session is its opener's alone
            used = await http.post("/mcp", json=rpc("ping", id=2), headers={**auth(token), **session})
            gone = await http.post("/mcp", json=rpc("ping", id=2), headers={**auth(token), **unknown})
            assert (used.status_code, used.text) == (gone.status_code, gone.text) and used.status_code == 404
            deleted = await http.delete("/mcp", headers={**auth(token), **session})
            assert deleted.status_code == 404
        mine = await http.post("/mcp", json=rpc("ping", id=3), headers={**auth(A), **session})
        assert mine.status_code == 200 and answer(mine)["result"] == {}
