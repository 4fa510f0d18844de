"""The CLI sets up logging like the server: warnings and errors only by default for `rk think`,
`rk --log-level` / LOG_LEVEL / RUST_LOG raise or lower it, `rk --log-format json` (and LOG_FORMAT,
`rk serve-mcp --log-format`) writes JSON lines, and on a terminal log lines are short
(`rk: level: message`). Real subprocesses against the fake LLM server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.fake_llm import Reply, schema_filler

RETRY_LINE = "attempt 1 failed"  # reasonkit.providers.stack (retry_hook) logs each retry at DEBUG


def env_for(fake_llm, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "LLM_DEFAULT_PROVIDER": "openai",
        "LOCAL_MODEL_AUTO": "false",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


def think(fake_llm, tmp_path, *global_args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`rk [global_args] think --protocol laserlogic ...` whose first model call fails once (HTTP 503)
    and is retried: the retry is logged at DEBUG."""
    fake_llm.default = schema_filler
    fake_llm.push(Reply(status=503))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonkit.cli",
            *global_args,
            "think",
            "--protocol",
            "laserlogic",
            "A, so B.",
        ],
        capture_output=True,
        text=True,
        env=env_for(fake_llm, tmp_path, **env),
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_think_logs_nothing_below_warnings_by_default(fake_llm, tmp_path):
    r = think(fake_llm, tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(fake_llm.requests) >= 2  # the retry happened ...
    assert RETRY_LINE not in r.stderr and "DEBUG" not in r.stderr and "| INFO" not in r.stderr  # ... quietly


@pytest.mark.parametrize(
    ("global_args", "env"),
    [
        (("--log-level", "debug"), {}),
        (("--log-level", "DEBUG"), {"LOG_LEVEL": "error"}),  # the flag wins over the environment
        ((), {"LOG_LEVEL": "debug"}),
        ((), {"RUST_LOG": "reasonkit=debug,hyper=warn"}),
    ],
)
def test_think_honours_the_log_level(fake_llm, tmp_path, global_args, env):
    r = think(fake_llm, tmp_path, *global_args, **env)
    assert r.returncode == 0, r.stderr
    assert RETRY_LINE in r.stderr
    line = next(x for x in r.stderr.splitlines() if RETRY_LINE in x)
    assert "DEBUG" in line  # text lines name their level (not a terminal: the full format)


@pytest.mark.parametrize("env", [{"LOG_LEVEL": "warning"}, {"RUST_LOG": "error"}])
def test_think_quieter_level_hides_debug(fake_llm, tmp_path, env):
    r = think(fake_llm, tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert RETRY_LINE not in r.stderr


@pytest.mark.parametrize(
    ("global_args", "env"),
    [
        (("--log-format", "json", "--log-level", "debug"), {}),
        ((), {"LOG_FORMAT": "json", "LOG_LEVEL": "debug"}),
    ],
)
def test_think_json_logs(fake_llm, tmp_path, global_args, env):
    r = think(fake_llm, tmp_path, *global_args, **env)
    assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    retry = [rec for rec in records if RETRY_LINE in rec["message"]]
    assert retry and retry[0]["level"] == "DEBUG"
    assert not any(RETRY_LINE in x and not x.startswith("{") for x in r.stderr.splitlines())


def test_bad_log_level_flag_is_a_usage_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "--log-level", "loud", "profiles", "list"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        timeout=60,
    )
    assert r.returncode == 2 and "--log-level" in r.stderr and "Traceback" not in r.stderr


def test_think_on_a_terminal_prints_short_log_lines(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    fake_llm.push(Reply(status=503))
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reasonkit.cli", "--log-level", "debug", "think", "--quiet"]
            + ["--protocol", "laserlogic", "A, so B."],
            stdout=subprocess.DEVNULL,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            env=env_for(fake_llm, tmp_path, TERM="dumb"),
        )
        os.close(follower)
        follower = -1
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    stderr = b"".join(chunks).decode("utf-8", "replace")
    retry = [x.strip() for x in stderr.splitlines() if RETRY_LINE in x]
    assert retry and retry[0].startswith("rk: debug: provider openai: attempt 1 failed"), stderr
    assert " | " not in retry[0]  # no timestamp / level columns


@pytest.mark.parametrize(
    "args", [("--log-format", "json", "serve-mcp"), ("serve-mcp", "--log-format", "json")]
)
def test_serve_mcp_json_logs(tmp_path, args):
    r = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", *args],
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "REASONKIT_DATA_DIR": str(tmp_path / "data"),
            "LOCAL_MODEL_AUTO": "false",
        },
        timeout=60,
        stdin=subprocess.DEVNULL,  # end of input: the stdio server stops
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines, "serve-mcp logs at info by default"
    records = [json.loads(x) for x in lines]
    assert all({"level", "message"} <= set(rec) for rec in records)
    assert any(rec["level"] == "INFO" for rec in records)
