"""The image's entry point as the deployment guide runs it: `docker run ... reasonkit serve-mcp --port
9100` replaces CMD, so the bind address must come from the image's environment (SERVER_HOST=0.0.0.0);
without tokens it stops with exit 2 and says exactly what to set; SERVER_PORT moves the default command
and the health check together. The image's ENTRYPOINT, CMD, ENV and HEALTHCHECK are read from the
Dockerfile; `rk` is this checkout's (no Docker engine needed). Nothing binds beyond 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reasonkit.config import load_settings
from tests.deploy.helpers import check_serve_mcp_args, env_pairs, exec_form, parse_dockerfile
from tests.server.procs import HttpServer, free_port, rk_command

_ARGS, STAGES = parse_dockerfile()
RUNTIME = STAGES[-1]
IMAGE_ENV: dict[str, str] = {}
for _value in RUNTIME.all("ENV"):
    IMAGE_ENV.update(env_pairs(_value))
ENTRYPOINT = exec_form(RUNTIME.all("ENTRYPOINT")[0])
CMD = exec_form(RUNTIME.all("CMD")[0])
GUIDE_ARGS = ["serve-mcp", "--port", "9100"]  # the guide's `docker run` line, after the image name

EXPECTED_ERROR = (
    "rk: error: refusing to serve HTTP on 0.0.0.0:9100 (not a loopback address) without authentication. "
    "Either set bearer tokens (REASONKIT_AUTH_TOKENS=token1,token2 or [security] auth_tokens_file = "
    '"/path/to/tokens"), or allow unauthenticated remote access explicitly ([security] '
    "allow_unauthenticated_remote = true or REASONKIT_ALLOW_UNAUTHENTICATED=true), e.g. behind a proxy "
    "that authenticates; or bind 127.0.0.1\n"
)


def _container_env(tmp_path, **extra: str) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **IMAGE_ENV, "REASONKIT_DATA_DIR": str(data)}
    env.update(extra)
    return env


def _entrypoint(args: list[str]) -> list[str]:
    assert ENTRYPOINT == ["rk"]
    return [*rk_command(), *args]


def test_the_guide_run_line_binds_all_interfaces_in_the_container():
    assert IMAGE_ENV["SERVER_HOST"] == "0.0.0.0"
    params = check_serve_mcp_args(GUIDE_ARGS)
    settings = load_settings(None, {"server.port": params["port"], "server.host": params["host"]}, IMAGE_ENV)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9100)
    # the default command: SERVER_PORT moves it
    params = check_serve_mcp_args(CMD)
    moved = load_settings(None, {"server.host": params["host"]}, {**IMAGE_ENV, "SERVER_PORT": "8080"})
    assert params["http_mode"] and (moved.server.host, moved.server.port) == ("0.0.0.0", 8080)


def test_no_token_on_the_container_bind_fails_with_the_exact_message(tmp_path):
    out = subprocess.run(
        _entrypoint(GUIDE_ARGS),
        env=_container_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.endswith(EXPECTED_ERROR), out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("with_port", [True, False])
def test_the_health_check_follows_server_port(tmp_path, fake_llm, with_port):
    """The HEALTHCHECK command, run as Docker runs it, against a server on SERVER_PORT (127.0.0.1 here:
    the check always asks 127.0.0.1, which a 0.0.0.0 bind answers too)."""
    (health,) = RUNTIME.all("HEALTHCHECK")
    probe = exec_form(health.split(" CMD ", 1)[1])
    assert probe[0] == "python"
    env = _container_env(
        tmp_path,
        SERVER_HOST="127.0.0.1",
        OPENAI_BASE_URL=fake_llm.openai_base_url,
        REASONKIT_AUTH_TOKENS="entrypoint-test-token-0123456789",
    )
    if not with_port:  # nothing listens there: the check fails
        check_env = {**env, "SERVER_PORT": str(free_port())}
        out = subprocess.run([sys.executable, *probe[1:]], env=check_env, capture_output=True, timeout=30)
        assert out.returncode != 0
        return
    server = HttpServer(env)
    try:
        check_env = {**env, "SERVER_PORT": str(server.port)}
        out = subprocess.run([sys.executable, *probe[1:]], env=check_env, capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
    finally:
        assert server.stop() == 0, server.log()
