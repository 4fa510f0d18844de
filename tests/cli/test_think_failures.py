"""`rk think` when the provider fails as a whole (issue 11, point 3), when a budget cannot be
enforced (point 5) and when the user presses Ctrl-C (point 6): subprocesses against the fake LLM."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import Reply, schema_filler


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


def test_unenforceable_cost_budget_is_said_at_the_start_and_in_the_result(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    r = run_rk(
        "think",
        "--protocol",
        "laserlogic",
        "--model",
        "mystery-model-1",
        "--budget",
        "$0.0001",
        "--format",
        "json",
        "All swans are white, so this bird is white.",
        env_extra=_env(fake_llm, tmp_path),
    )
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "not enforced" in line]
    assert warning and "mystery-model-1" in warning[0] and "[llm] prices" in warning[0]
    # said before the first step's progress line
    assert r.stderr.index("not enforced") < r.stderr.index("confidence")
    out = json.loads(r.stdout)
    assert out["budget_enforced"] is False and "mystery-model-1" in out["budget_note"]
    assert out["price_known"] is False


def test_known_price_budget_is_enforced_and_says_so(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    r = run_rk(
        "think",
        "--protocol",
        "laserlogic",
        "--model",
        "gpt-4o-mini",
        "--budget",
        "$5",
        "--format",
        "json",
        "All swans are white, so this bird is white.",
        env_extra=_env(fake_llm, tmp_path),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["budget_enforced"] is True and "budget_note" not in out
    assert "not enforced" not in r.stderr


def test_ctrl_c_prints_the_partial_result_and_stores_its_confidence(fake_llm, tmp_path):
    """GigaThink finishes, LaserLogic hangs, the user presses Ctrl-C: what finished is printed,
    marked cancelled, and the stored run keeps its confidence (issue 11, point 6)."""

    def handler(req):
        reply = schema_filler(req)
        if "Reconstruct the argument below" in req.last_user_text:
            return dataclasses.replace(reply, delay=60)  # LaserLogic's first step never answers in time
        return reply

    fake_llm.default = handler
    env = {
        "PATH": os.environ["PATH"],
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONFAULTHANDLER": "1",
        **_env(fake_llm, tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "reasonkit.cli", "think", "--profile", "quick", "--format", "json", "q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A background job of a non-interactive shell (how CI may start the suite) inherits SIGINT
        # ignored, and so would rk: give it the default disposition a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        seen = ""
        while time.monotonic() < deadline:  # wait (bounded) until GigaThink's last step finished
            line = proc.stderr.readline()
            seen += line
            if "synthesize" in line and "laserlogic" not in line:
                break
            if not line and proc.poll() is not None:
                break
        assert "synthesize" in seen, seen
        while not any("Reconstruct the argument below" in q.last_user_text for q in fake_llm.requests):
            assert time.monotonic() < deadline, "laserlogic never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the request is out: let the client settle into waiting for the reply
        proc.send_signal(signal.SIGINT)
        try:
            out_text, err_text = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            out_text, err_text = proc.communicate(timeout=30)
            pytest.fail(f"rk think did not exit 30 s after Ctrl-C; its stacks:\n{err_text[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 130, err_text
    out = json.loads(out_text)
    assert out["status"] == "cancelled"
    entries = {e["entry"]: e for e in out["entries"]}
    assert entries["gigathink"]["status"] == "complete" and entries["gigathink"]["confidence"] > 0
    assert entries["laserlogic"]["status"] == "cancelled"
    assert out["confidence"] > 0 and out["answer"].startswith("**Cancelled**")
    assert "Traceback" not in err_text and "interrupted" in err_text
    stored = _stored(tmp_path, out["run_id"])
    assert stored["status"] == "cancelled" and stored["confidence"] == pytest.approx(
        out["confidence"], abs=1e-3
    )


def test_save_trace_into_a_file_path_is_one_clear_error(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    r = run_rk(
        "think",
        "--protocol",
        "laserlogic",
        "--save-trace",
        str(blocker / "traces"),
        "A, so B.",
        env_extra=_env(fake_llm, tmp_path),
    )
    assert r.returncode == 1
    assert "rk: error: cannot write" in r.stderr and "Traceback" not in r.stderr
    assert blocker.read_text() == "x" and list(tmp_path.glob("**/.*.tmp")) == []
