"""Probes and /health as the deployment guides use them: `/live` and `/ready` (and `/health/live`,
`/health/ready`) answer without a token on a server that requires one; `/health` shows each
provider's circuit breaker; a server started with the guide's own config file and .env answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.config.test_compat import GUIDE_ENV, GUIDE_TOML, read_env
from tests.deploy.helpers import mcp_tool_call
from tests.fakes.fake_llm import Reply
from tests.server.procs import HttpServer, free_port, rk_command

TOKEN = "probe-test-token-0123456789abcdef"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(data),
        "LOCAL_MODEL_AUTO": "false",
        **extra,
    }


def test_probes_need_no_token_and_the_rest_does(tmp_path, fake_llm):
    env = _env(tmp_path, OPENAI_BASE_URL=fake_llm.openai_base_url, REASONKIT_AUTH_TOKENS=TOKEN)
    server = HttpServer(env, "--host", "127.0.0.1")
    try:
        for path in ("/live", "/health/live"):
            r = httpx.get(server.url + path, timeout=5)
            assert r.status_code == 200 and r.json()["status"] == "alive", (path, r.text)
        for path in ("/ready", "/health/ready"):
            r = httpx.get(server.url + path, timeout=5)
            assert r.status_code == 200 and r.json()["status"] == "ready", (path, r.text)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 401
        assert httpx.get(server.url + "/metrics", timeout=5).status_code == 401
        authed = httpx.get(server.url + "/health", headers={"authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert authed.status_code == 200
        # the side port never asks for a token
        side = f"http://127.0.0.1:{server.metrics_port}"
        for path in ("/live", "/ready", "/health"):
            assert httpx.get(side + path, timeout=5).status_code == 200, path
    finally:
        assert server.stop() == 0, server.log()


def test_health_shows_each_provider_circuit_state(tmp_path, fake_llm):
    """The guide's variables drive the breaker: CIRCUIT_BREAKER_THRESHOLD=1 and no retries
    (`[llm.rate_limiting] retry_attempts = 0`); a provider answering 500 opens its circuit, and
    /health shows it open with the fallback still closed."""
    cfg = tmp_path / "default.toml"
    cfg.write_text(
        "[llm]\n"
        'default_provider = "openai"\n'
        'default_model = "gpt-test"\n'
        "[llm.rate_limiting]\n"
        "retry_attempts = 0\n"
        'fallback_provider = "backup"\n'
        "[llm.providers.backup]\n"
        'kind = "openai"\n'
        'model = "gpt-backup"\n'
        f'api_base = "http://127.0.0.1:{free_port()}/v1"\n'
    )
    env = _env(
        tmp_path,
        OPENAI_BASE_URL=fake_llm.openai_base_url,
        REASONKIT_CONFIG=str(cfg),
        CIRCUIT_BREAKER_THRESHOLD="1",
        CIRCUIT_BREAKER_TIMEOUT="600",
    )
    fake_llm.default = lambda req: Reply(status=500, text="upstream broke")
    server = HttpServer(env, "--host", "127.0.0.1")
    try:
        side = f"http://127.0.0.1:{server.metrics_port}"
        before = httpx.get(side + "/health", timeout=10).json()["checks"]["llm_provider"]["circuits"]
        assert before == {
            "openai": {"state": "closed", "failures": 0},
            "backup": {"state": "closed", "failures": 0},
        }
        mcp_tool_call(server.url, None, "laserlogic", {"argument": "All swans are white."})
        deadline = time.monotonic() + 20
        while True:  # /health caches its body for a few seconds
            circuits = httpx.get(side + "/health", timeout=10).json()["checks"]["llm_provider"]["circuits"]
            if circuits["openai"]["state"] == "open" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert circuits["openai"]["state"] == "open", circuits
        assert circuits["openai"]["failures"] >= 1 and 0 < circuits["openai"]["retry_in_secs"] <= 600
        assert circuits["backup"]["state"] in ("closed", "open")  # the fallback was tried, and failed too
    finally:
        assert server.stop() == 0, server.log()


def test_the_guide_files_start_the_server(tmp_path):
    """The guide's default.toml (as /app/config/default.toml would be) and .env, verbatim; only the
    bind is made loopback for the test (the guide binds 0.0.0.0, which needs tokens: see
    tests/deploy/test_entrypoint.py) and the Anthropic endpoint points at a closed local port."""
    cfg = tmp_path / "default.toml"
    shutil.copy(GUIDE_TOML, cfg)
    # SERVER_WORKERS=4 from the .env would start four processes on the shared test machine: one will do
    env = _env(
        tmp_path,
        **{**read_env(GUIDE_ENV), "SERVER_WORKERS": "1"},
        REASONKIT_CONFIG=str(cfg),
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    env.pop("LOCAL_MODEL_AUTO")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w+") as err:
        proc = subprocess.Popen(
            [*rk_command(), "serve-mcp", "--port", str(port), "--host", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert httpx.get(f"http://127.0.0.1:{port}/live", timeout=5).status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    warnings = [x["message"] for x in lines if x["level"] == "WARNING"]
    assert sum("[database.qdrant]" in w for w in warnings) == 1, warnings
    assert sum(w.startswith("QDRANT_URL is ignored") for w in warnings) == 1, warnings
    assert "unknown setting" not in log.read_text()
