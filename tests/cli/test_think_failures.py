"""`rk think` when the provider fails as a whole (issue 11, point 3), when a budget cannot be
enforced (point 5) and when the user presses Ctrl-C (point 6): subprocesses against the fake LLM."""

import json

import pytest

from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import Reply


def _env(fake_llm, tmp_path, **extra):
    return {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


def _stored(tmp_path, run_id):
    r = run_rk(
        "runs",
        "list",
        "--format",
        "json",
        env_extra={"HOME": str(tmp_path), "REASONKIT_DATA_DIR": str(tmp_path / "data")},
    )
    assert r.returncode == 0, r.stderr
    return {row["run_id"]: row for row in json.loads(r.stdout)}[run_id]


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (401, "invalid_request_error", "401"),
        (404, "model_not_found", "404"),
    ],
)
def test_provider_failure_stops_the_chain_at_once(fake_llm, tmp_path, status, error_type, words):
    fake_llm.default = lambda req: Reply(status=status, text="no such key or model", error_type=error_type)
    r = run_rk("think", "--profile", "balanced", "--format", "json", "q", env_extra=_env(fake_llm, tmp_path))
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "failed" and out["complete"] is False
    # the first call failed: nothing after it was sent (balanced's first entry starts with one step)
    assert len([q for q in fake_llm.requests if q.path.endswith("/chat/completions")]) == 1
    assert words in out["stop_reason"]
    assert all(e["status"] in ("failed", "skipped", "incomplete") for e in out["entries"])
    assert "Traceback" not in r.stderr
    stored = _stored(tmp_path, out["run_id"])
    assert stored["status"] == "failed"


def test_provider_failure_text_output_says_failed(fake_llm, tmp_path):
    fake_llm.default = lambda req: Reply(status=401, text="bad key", error_type="invalid_request_error")
    r = run_rk("think", "--profile", "quick", "q", env_extra=_env(fake_llm, tmp_path))
    assert r.returncode == 1
    assert "FAILED" in r.stdout and "INCOMPLETE" not in r.stdout
    assert "Incomplete result" not in r.stdout
    assert r.stdout.splitlines()[1].startswith("**Failed** (provider failed")
    assert "WARNING" not in r.stderr  # one clear message: the result says it


def test_unreachable_provider_is_not_retried_by_later_entries(tmp_path):
    # nothing listens on port 9: every attempt is refused
    r = run_rk(
        "think",
        "--profile",
        "quick",
        "--format",
        "json",
        "q",
        env_extra={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "HOME": str(tmp_path)},
    )
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["status"] == "failed"
    # only the first entry tried: later entries were not started
    started = [e for e in out["entries"] if e["status"] != "skipped"]
    assert len(started) == 1, out["entries"]
    assert "connect" in out["stop_reason"].lower() or "reach" in out["stop_reason"].lower()
