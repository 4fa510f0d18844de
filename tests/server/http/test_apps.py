"""The health and metrics routes in-process (ASGI): readiness states, metrics switch."""

from __future__ import annotations

import httpx
import pytest

from reasonkit.server.http.apps import build_side_app
from tests.server.conftest import make_settings

pytestmark = pytest.mark.anyio


async def get(app, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        return await client.get(path)


async def test_ready_is_503_while_starting_and_draining(make_server):
    core = make_server()
    app = build_side_app(core)
    r = await get(app, "/health/ready")
    assert r.status_code == 503 and r.json()["status"] == "starting"
    core.status.ready = True
    r = await get(app, "/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "inflight": 0}
    core.status.draining = True
    r = await get(app, "/health/ready")
    assert r.status_code == 503 and r.json()["status"] == "draining"
    assert (await get(app, "/health/live")).status_code == 200
    health = await get(app, "/health")
    assert health.json()["ready"] is False and health.headers["cache-control"] == "no-store"


async def test_metrics_exposition_and_switch(make_server, fake_llm, tmp_path):
    core = make_server()
    r = await get(build_side_app(core), "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE reasonkit_requests_total counter" in r.text
    s = make_settings(fake_llm, tmp_path / "off", ENABLE_METRICS="false")
    off = make_server(settings=s)
    r = await get(build_side_app(off), "/metrics")
    assert r.status_code == 404 and "disabled" in r.text


async def test_health_is_503_without_a_provider(make_server):
    core = make_server(provider=None)
    r = await get(build_side_app(core), "/health")
    assert r.status_code == 503 and r.json()["status"] == "unhealthy"
