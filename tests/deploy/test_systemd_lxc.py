"""deploy/systemd and deploy/lxc: `systemd-analyze verify` on the unit, `logrotate -d` on the
rotation file, the shipped config against the settings model, and deploy/lxc/install.sh run for
real (twice: idempotent) into a scratch directory with its own system user, after which the
installed `rk` is started the way the unit starts it: as that user, with the unit's environment
and EnvironmentFile, `/` read-only except the unit's ReadWritePaths and a private /tmp."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reasonkit.config import ENV_VARS, OTHER_ENV_VARS, Settings
from tests.deploy.conftest import DEPLOY, fail_or_skip, require_tool
from tests.deploy.helpers import (
    check_serve_mcp_args,
    mcp_tool_call,
    require_sandbox,
    sandbox_argv,
    wait_ready,
)
from tests.server.procs import free_port

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "reasonkit.service"
INSTALL = DEPLOY / "lxc" / "install.sh"


def _unit(text: str) -> dict[str, list[str]]:
    """[Service] directives -> values (a directive may repeat)."""
    out: dict[str, list[str]] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def _verify(unit_text: str, tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "Debian package systemd")
    unit = tmp_path / "reasonkit.service"
    unit.write_text(unit_text)
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # any warning (an unknown or misspelt directive, a bad value) counts as a failure
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr


def test_systemd_analyze_verify(tmp_path):
    stub = tmp_path / "rk"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    _verify(UNIT.read_text().replace("/opt/reasonkit/venv/bin/rk", str(stub)), tmp_path)


def test_unit_matches_the_code():
    u = _unit(UNIT.read_text())
    (exec_start,) = u["Service.ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/reasonkit/venv/bin/rk"
    params = check_serve_mcp_args(argv[1:])
    assert params["port"] == 9100
    assert u["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert u["Service.Restart"] == ["always"]
    assert u["Service.EnvironmentFile"] == ["/etc/reasonkit/reasonkit.env"]
    env = dict(v.split("=", 1) for v in u["Service.Environment"])
    assert set(env) <= set(ENV_VARS) | set(OTHER_ENV_VARS)
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "RestrictSUIDSGID",
        "LockPersonality",
    ):
        assert u[f"Service.{key}"] == ["yes"], key
    assert u["Service.ProtectSystem"] == ["strict"]
    rw = u["Service.ReadWritePaths"][0].split()
    assert env["REASONKIT_DATA_DIR"] in rw
    settings = Settings.model_validate(tomllib.loads((SYSTEMD / "config.toml").read_text()))
    assert env["REASONKIT_CONFIG"] == "/etc/reasonkit/config.toml"
    assert settings.logging.file is not None
    assert str(Path(settings.logging.file).parent) in rw  # the log file is writable
    assert int(u["Service.TimeoutStopSec"][0]) > settings.server.shutdown_grace_secs
    assert settings.security.auth_tokens_file == "/etc/reasonkit/tokens"


def test_env_example_names_only_variables_the_code_reads():
    names = set()
    for line in (SYSTEMD / "reasonkit.env.example").read_text().splitlines():
        line = line.strip().removeprefix("#").strip()
        if "=" in line and " " not in line.split("=", 1)[0] and line.split("=", 1)[0].isupper():
            names.add(line.split("=", 1)[0])
    assert names and names <= set(ENV_VARS) | set(OTHER_ENV_VARS), names - set(ENV_VARS) - set(OTHER_ENV_VARS)


def test_logrotate_accepts_the_file(tmp_path):
    logrotate = require_tool("logrotate", "Debian package logrotate")
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "reasonkit.log").write_text("x\n" * 10)
    me = pwd.getpwuid(os.getuid()).pw_name
    my_group = grp.getgrgid(os.getgid()).gr_name
    text = (SYSTEMD / "reasonkit.logrotate").read_text()
    settings = Settings.model_validate(tomllib.loads((SYSTEMD / "config.toml").read_text()))
    assert settings.logging.file is not None
    assert f"{Path(settings.logging.file).parent}/*.log" in text
    conf = tmp_path / "reasonkit"
    conf.write_text(
        text.replace("/var/log/reasonkit", str(logs)).replace("reasonkit reasonkit", f"{me} {my_group}")
    )
    out = subprocess.run(
        [logrotate, "-d", "-f", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "error" not in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
    assert "copying" in out.stderr + out.stdout and "truncating" in out.stderr + out.stdout


# ----------------------------------------------------------------------------- install.sh, for real


@pytest.fixture(scope="module")
def installed() -> Iterator[dict[str, object]]:
    if os.geteuid() != 0:
        fail_or_skip("NOT VALIDATED: install.sh needs root (it creates a system user)")
    if subprocess.run(["/usr/bin/python3", "-c", "import ensurepip, venv"], capture_output=True).returncode:
        fail_or_skip(
            "NOT VALIDATED: Debian python3 with venv is missing "
            "(Debian packages python3, python3-venv; `bash .ci/run` installs them)"
        )
    root = Path(tempfile.mkdtemp(prefix="reasonkit-install-", dir="/var/tmp"))
    root.chmod(0o755)
    user = "rkt" + secrets.token_hex(4)
    port = free_port()
    paths = {
        "venv": root / "opt" / "venv",
        "config-dir": root / "etc",
        "data-dir": root / "var-lib",
        "log-dir": root / "var-log",
        "unit-dir": root / "units",
        "logrotate-dir": root / "logrotate.d",
    }
    argv = ["bash", str(INSTALL), "--no-apt", "--no-start", "--user", user, "--port", str(port)]
    for k, v in paths.items():
        argv += [f"--{k}", str(v)]
    # Debian's python3 (the one a Debian 12 container has; uid `user` can execute it)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(root)}
    try:
        first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        assert first.returncode == 0, first.stderr[-4000:]
        token = (paths["config-dir"] / "tokens").read_text().strip()
        # a second run upgrades in place and keeps config, environment and token
        (paths["config-dir"] / "config.toml").write_text(
            (paths["config-dir"] / "config.toml").read_text() + "\n# edited by the operator\n"
        )
        second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        assert second.returncode == 0, second.stderr[-4000:]
        assert "creating system user" not in second.stderr and "wrote" not in second.stderr.replace(
            "wrote a new", ""
        )
        yield {
            "root": root,
            "user": user,
            "port": port,
            "token": token,
            "paths": paths,
            "first": first.stderr,
            "second": second.stderr,
        }
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_install_sh_is_idempotent(installed):
    paths = installed["paths"]
    user = installed["user"]
    assert "creating system user" in installed["first"]
    assert (paths["config-dir"] / "tokens").read_text().strip() == installed["token"]
    assert "# edited by the operator" in (paths["config-dir"] / "config.toml").read_text()
    pw = pwd.getpwnam(user)
    assert pw.pw_shell == "/usr/sbin/nologin" and pw.pw_uid < 1000  # a system account
    for d in ("data-dir", "log-dir"):
        st = paths[d].stat()
        assert st.st_uid == pw.pw_uid and oct(st.st_mode & 0o777) == "0o750", d
    for f in ("config.toml", "reasonkit.env", "tokens"):
        st = (paths["config-dir"] / f).stat()
        assert st.st_uid == 0 and st.st_gid == pw.pw_gid and oct(st.st_mode & 0o777) == "0o640", f
    assert (paths["logrotate-dir"] / "reasonkit").read_text().count(f"su {user} {user}") == 1


def test_installed_unit_verifies(installed, tmp_path):
    unit = (installed["paths"]["unit-dir"] / "reasonkit.service").read_text()
    assert f"User={installed['user']}" in unit and f"--port {installed['port']}" in unit
    _verify(unit, tmp_path)  # its ExecStart is the real, installed rk


def test_installed_service_runs_as_the_unit_says(installed, fake_llm):
    """Start the installed rk as the unit would (its user, Environment=, EnvironmentFile=, ExecStart,
    only its ReadWritePaths writable, a private /tmp), except SERVER_HOST=127.0.0.1 (the test does
    not listen on other interfaces); then a tool call with the installed token, SIGHUP (ExecReload)
    and SIGTERM (stop)."""
    from tests.fakes.fake_llm import schema_filler

    require_sandbox()
    fake_llm.default = schema_filler
    paths = installed["paths"]
    u = _unit((paths["unit-dir"] / "reasonkit.service").read_text())
    env = {"PATH": "/usr/bin:/bin"}
    env.update(dict(v.split("=", 1) for v in u["Service.Environment"]))
    for line in Path(u["Service.EnvironmentFile"][0]).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    env.update(SERVER_HOST="127.0.0.1", OPENAI_BASE_URL=fake_llm.openai_base_url, HOME=str(paths["data-dir"]))
    env = {k: v for k, v in env.items() if v != ""}
    pw = pwd.getpwnam(installed["user"])
    writable = [Path(p) for p in u["Service.ReadWritePaths"][0].split()]
    argv = shlex.split(u["Service.ExecStart"][0])
    log = installed["root"] / "service.stderr"
    with log.open("w+") as err:
        proc = subprocess.Popen(
            sandbox_argv(argv, env, writable, pw.pw_uid, pw.pw_gid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        base = f"http://127.0.0.1:{installed['port']}"
        try:
            wait_ready(base, proc, log.read_text)
            assert httpx.post(f"{base}/mcp", json={}, timeout=5).status_code == 401  # tokens are on
            result = mcp_tool_call(
                base, installed["token"], "bedrock", {"statement": "Water boils at 100 C."}
            )
            assert not result.get("isError"), result
            proc.send_signal(signal.SIGHUP)  # ExecReload
            wait_ready(base, proc, log.read_text)
            assert proc.poll() is None
            assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0, log.read_text()
    assert (paths["data-dir"] / "runs.db").stat().st_uid == pw.pw_uid
    settings_log = paths["log-dir"] / "reasonkit.log"
    assert settings_log.exists() and '"level"' in settings_log.read_text()  # [logging] file, JSON lines


def test_install_sh_refuses_bad_input(tmp_path):
    if os.geteuid() != 0:
        fail_or_skip("NOT VALIDATED: install.sh needs root")
    out = subprocess.run(["bash", str(INSTALL), "--no-apt", "--port", "nine"], capture_output=True, text=True)
    assert out.returncode != 0 and "--port must be a number" in out.stderr
    out = subprocess.run(["bash", str(INSTALL), "--bogus"], capture_output=True, text=True)
    assert out.returncode != 0 and "unknown option" in out.stderr
    out = subprocess.run(
        ["bash", str(INSTALL), "--wheel", str(tmp_path / "missing.whl")], capture_output=True, text=True
    )
    assert out.returncode != 0 and "does not exist" in out.stderr


def test_unit_sections():
    sections = [ln.strip() for ln in UNIT.read_text().splitlines() if ln.startswith("[")]
    assert sections == ["[Unit]", "[Service]", "[Install]"]
    assert _unit(UNIT.read_text())["Install.WantedBy"] == ["multi-user.target"]
