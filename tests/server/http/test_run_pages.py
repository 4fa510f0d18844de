"""The served run pages, in process (ASGI): `/runs` with its filters and `/runs/{id}` on the main
HTTP port and the side port; bearer tokens on both when configured; `[server] run_viewer`."""

from __future__ import annotations

import httpx
import pytest

from reasonkit.server.http.apps import build_http_app, build_side_app
from reasonkit.server.http.run_pages import run_page_url
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call
from tests.viewer.runs import HOSTILE, make_all

pytestmark = pytest.mark.anyio
TOKEN = "a" * 40


@pytest.fixture
async def ids(tmp_path):
    return await make_all(tmp_path / "data")


def server(
    make_server, fake_llm, tmp_path, host="127.0.0.1", tokens="", viewer="auto", admins=(), **security
):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.run_viewer = viewer
    s.server.admin_principals = list(admins)
    s.server.host = host
    for key, value in security.items():
        setattr(s.security, key, value)
    core = make_server(settings=s)
    core.bind_host = host
    core.security = SecurityPolicy.from_settings(s, host, {"REASONKIT_AUTH_TOKENS": tokens} if tokens else {})
    return core


async def side_get(core, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_side_app(core))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9101") as http:
        return await http.get(path, headers=headers)


async def test_the_list_and_the_report_on_the_main_port(make_server, fake_llm, tmp_path, ids):
    core = server(make_server, fake_llm, tmp_path)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        r = await http.get("/runs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
        for run_id in ids.values():
            assert f'href="runs/{run_id}"' in r.text
        failed = (await http.get("/runs", params={"status": "failed"})).text
        assert ids["failed"] in failed and ids["complete"] not in failed
        tool = (await http.get("/runs", params={"tool": "laserlogic", "limit": "10"})).text
        assert ids["incomplete"] in tool and ids["complete"] not in tool and ids["failed"] not in tool
        page = await http.get(f"/runs/{ids['complete']}")
        assert page.status_code == 200 and '<svg class="gantt"' in page.text
        assert "&lt;script&gt;" in page.text and "<script" not in page.text and HOSTILE not in page.text
        assert 'href="../runs"' in page.text
        missing = await http.get("/runs/nope")
        assert missing.status_code == 404 and "no run with id" in missing.text.lower()
        bad = await http.get("/runs", params={"status": "bogus"})
        assert bad.status_code == 400 and "unknown run status" in bad.text
        assert (await http.get("/runs", params={"limit": "0"})).status_code == 400
        assert (await http.get("/runs", params={"limit": "x"})).status_code == 400
        assert (await http.post("/runs")).status_code == 405


async def test_the_side_port_serves_them_too(make_server, fake_llm, tmp_path, ids):
    core = server(make_server, fake_llm, tmp_path)
    r = await side_get(core, f"/runs/{ids['interrupted']}")
    assert r.status_code == 200 and '<span class="badge s-interrupted">interrupted</span>' in r.text
    assert ids["budget"] in (await side_get(core, "/runs")).text


async def test_tokens_guard_the_pages_on_both_ports(make_server, fake_llm, tmp_path, ids):
    # the runs were made by `rk think` (no owner): an admin sees them (tests/server/http/test_principals.py)
    core = server(make_server, fake_llm, tmp_path, tokens=f"ops:{TOKEN}", admins=("ops",))
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        for path in ("/runs", f"/runs/{ids['complete']}"):
            r = await http.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert (await http.get(path, headers={"authorization": "Bearer wrong"})).status_code == 401
            assert (await http.get(path, headers=auth)).status_code == 200
    for path in ("/runs", f"/runs/{ids['complete']}"):
        r = await side_get(core, path)
        assert r.status_code == 401 and r.json()["error"]["data"]["reason"] == "unauthorized"
        assert ids["complete"] not in r.text
        assert (await side_get(core, path, authorization="Bearer wrong")).status_code == 401
        assert (await side_get(core, path, **auth)).status_code == 200
    assert (await side_get(core, "/health/live")).status_code == 200  # the probes stay open


async def test_the_viewer_is_off_on_a_remote_bind_without_auth(make_server, fake_llm, tmp_path, ids):
    core = server(make_server, fake_llm, tmp_path, host="0.0.0.0", allow_unauthenticated_remote=True)
    async with asgi_client(build_http_app(core, "0.0.0.0"), base_url="http://10.1.2.3:9100") as http:
        r = await http.get(f"/runs/{ids['complete']}")
        assert r.status_code == 404 and "run_viewer" in r.text and ids["complete"] not in r.text
    assert (await side_get(core, "/runs")).status_code == 404
    assert run_page_url(core, ids["complete"]) is None
    core.settings.server.run_viewer = "on"  # explicitly on (e.g. behind an authenticating proxy)
    assert (await side_get(core, f"/runs/{ids['complete']}")).status_code == 200


async def test_remote_bind_with_tokens_serves_and_off_means_off(make_server, fake_llm, tmp_path, ids):
    core = server(make_server, fake_llm, tmp_path, host="0.0.0.0", tokens=TOKEN)
    r = await side_get(core, "/runs", authorization=f"Bearer {TOKEN}")
    assert r.status_code == 200
    core.settings.server.run_viewer = "off"
    assert (await side_get(core, "/runs", authorization=f"Bearer {TOKEN}")).status_code == 404


async def test_the_link_to_a_run_page(make_server, fake_llm, tmp_path):
    core = server(make_server, fake_llm, tmp_path)
    assert run_page_url(core, "abc") == f"http://127.0.0.1:{core.settings.server.port}/runs/abc"
    core.settings.server.run_viewer = "off"
    assert run_page_url(core, "abc") is None
    core.settings.server.run_viewer = "auto"
    core.security = None  # stdio: only the side port can serve it
    assert run_page_url(core, "abc") is None
    core.settings.server.metrics_port = 9999
    assert run_page_url(core, "abc") == "http://127.0.0.1:9999/runs/abc"


async def test_tool_results_link_to_the_run_page(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = server(make_server, fake_llm, tmp_path)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        r = await http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q"}))
        result = answer(r)["result"]
        link = result["structuredContent"]["run_page"]
        run_id = result["structuredContent"]["run_id"]
        assert link == f"http://127.0.0.1:{core.settings.server.port}/runs/{run_id}"
        assert link in result["content"][0]["text"]
        page = await http.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "<h4>" in page.text
    core.settings.server.run_viewer = "off"
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        r = await http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": "q"}))
        assert "run_page" not in answer(r)["result"]["structuredContent"]
