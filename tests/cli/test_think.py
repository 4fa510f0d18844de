"""`rk` end to end in subprocesses, against the fake LLM server."""

import json
import os
import subprocess
import sys

import pytest

from tests.fakes.fake_llm import schema_filler


def run_rk(*args, env_extra=None, input=None, timeout=120):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        # Anything not on loopback goes to a dead proxy: real provider hosts are never reached.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        **(env_extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=timeout,
    )


def test_version_is_fast_path():
    r = run_rk("--version")
    assert r.returncode == 0 and r.stdout.strip() == "rk 0.1.0"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, reasonkit.cli; "
            "print(sorted(m for m in ('anthropic','openai','mcp','reasonkit.engine') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]"


def test_think_without_provider_exits_2_and_says_what_to_set(tmp_path):
    r = run_rk("think", "why?", env_extra={"HOME": str(tmp_path), "LOCAL_MODEL_AUTO": "false"})
    assert r.returncode == 2
    assert "ANTHROPIC_API_KEY" in r.stderr and "OPENAI_BASE_URL" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("profile", ["balanced", "quick"])
def test_think_profile_json_and_trace(fake_llm, tmp_path, profile):
    fake_llm.default = schema_filler
    r = run_rk(
        "think",
        "--profile",
        profile,
        "--format",
        "json",
        "--save-trace",
        str(tmp_path / "traces"),
        "Should we rewrite it in Rust? {{ inputs.x }}",
        env_extra={
            "OPENAI_BASE_URL": fake_llm.openai_base_url,
            "HOME": str(tmp_path),
            "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # the run is in the run store too
    runs = run_rk(
        "runs",
        "list",
        "--format",
        "json",
        env_extra={"HOME": str(tmp_path), "REASONKIT_DATA_DIR": str(tmp_path / "data")},
    )
    stored = {row["run_id"]: row for row in json.loads(runs.stdout)}
    assert stored[out["run_id"]]["status"] == "complete" and stored[out["run_id"]]["name"] == profile
    for key in (
        "run_id",
        "profile",
        "answer",
        "confidence",
        "meets_threshold",
        "complete",
        "confidence_breakdown",
        "steps",
        "tokens",
        "cost_usd",
        "duration_ms",
    ):
        assert key in out
    assert out["profile"] == profile and out["complete"] is True
    assert 0 <= out["confidence"] <= 1 and out["answer"]
    assert {"step_id", "protocol", "status", "confidence", "duration_ms", "tokens"} <= set(out["steps"][0])
    assert out["tokens"]["input"] > 0
    trace = json.loads((tmp_path / "traces" / f"{out['run_id']}.json").read_text())
    first = trace["entries"][0]["steps"][0]
    assert first["prompt"] and first["raw_response"] and first["calls"]
    assert "{{ inputs.x }}" in first["prompt"]  # user text verbatim
    # progress went to stderr as plain lines (not a terminal), and no log chatter below warnings
    assert "start" in r.stderr and "confidence" in r.stderr
    assert "| INFO" not in r.stderr and "| DEBUG" not in r.stderr
    # every request used the real SDK wire format against the fake
    assert all(q.api == "openai" for q in fake_llm.requests)


def test_think_protocol_with_extra_input_and_budget(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    r = run_rk(
        "think",
        "--protocol",
        "proofguard",
        "--input",
        "sources=Source A says so",
        "--budget",
        "1t",
        "--format",
        "json",
        "The sky is blue",
        env_extra={"ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url, "HOME": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] is False and "token budget" in out["stop_reason"]
    assert len(fake_llm.requests) == 1  # nothing new was scheduled after the budget was spent
    assert "Source A says so" in json.dumps(fake_llm.requests[0].body)


@pytest.mark.parametrize(
    "args, message",
    [
        (["think", "--profile", "nope", "q"], "unknown profile 'nope'"),
        (["think", "--protocol", "nope", "q"], "unknown protocol 'nope'"),
        (["think", "--budget", "soon", "q"], "budget 'soon' is not understood"),
        (["think", "--protocol", "gigathink", "--input", "bogus=1", "q"], "no input 'bogus'"),
    ],
)
def test_think_bad_input_is_a_clear_error(fake_llm, tmp_path, args, message):
    r = run_rk(*args, env_extra={"OPENAI_BASE_URL": fake_llm.openai_base_url, "HOME": str(tmp_path)})
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert fake_llm.requests == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["think", "--profile", "balance", "q"], "unknown profile 'balance' (did you mean 'balanced'?"),
        (
            ["think", "--protocol", "laserlgic", "q"],
            "unknown protocol 'laserlgic' (did you mean 'laserlogic'?",
        ),
        (["protocols", "show", "proofgaurd"], "did you mean 'proofguard'?"),
    ],
)
def test_a_misspelt_name_suggests_the_nearest(fake_llm, tmp_path, args, message):
    r = run_rk(*args, env_extra={"OPENAI_BASE_URL": fake_llm.openai_base_url, "HOME": str(tmp_path)})
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_think_without_a_question_shows_the_usage(tmp_path):
    """`rk think` alone (nothing piped in) printed only an error line: it shows how to ask."""
    r = run_rk("think", env_extra={"HOME": str(tmp_path)}, input="")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Usage:" in r.stderr and "QUERY" in r.stderr and "give a question" in r.stderr


def test_lists(tmp_path):
    env = {"HOME": str(tmp_path)}
    r = run_rk("protocols", "list", "--format", "json", env_extra=env)
    assert {p["id"] for p in json.loads(r.stdout)} >= {
        "gigathink",
        "laserlogic",
        "bedrock",
        "proofguard",
        "brutalhonesty",
    }
    r = run_rk("profiles", "list", env_extra=env)
    assert "balanced" in r.stdout and "paranoid" in r.stdout
    r = run_rk("protocols", "show", "bedrock", env_extra=env)
    assert 'id = "bedrock"' in r.stdout


def storage_env(fake_llm, tmp_path, storage_toml: str) -> dict[str, str]:
    """Environment for `rk` with a config file holding `storage_toml` under [storage]."""
    fake_llm.default = schema_filler
    config = tmp_path / "config.toml"
    config.write_text(f"[storage]\n{storage_toml}\n")
    return {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "REASONKIT_CONFIG": str(config),
    }


def think_laserlogic(env: dict[str, str]) -> dict:
    r = run_rk(
        "think", "--protocol", "laserlogic", "--format", "json", "-q", "All men are mortal.", env_extra=env
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_think_honours_save_runs_false(fake_llm, tmp_path):
    env = storage_env(fake_llm, tmp_path, "save_runs = false")
    assert think_laserlogic(env)["status"] == "complete"
    assert not (tmp_path / "data" / "runs.db").exists()


def test_think_applies_max_runs(fake_llm, tmp_path):
    env = storage_env(fake_llm, tmp_path, "max_runs = 1")
    ids = [think_laserlogic(env)["run_id"] for _ in range(2)]
    listed = run_rk("runs", "list", "--format", "json", env_extra=env)
    assert [row["run_id"] for row in json.loads(listed.stdout)] == [ids[1]]
