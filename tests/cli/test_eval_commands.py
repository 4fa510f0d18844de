"""`rk eval`, `rk eval fit` and `rk eval report` end to end in subprocesses, against the fake LLM
server; then `rk think` on the same tool and model reports the calibrated confidence."""

from __future__ import annotations

import json

import pytest

from reasonkit.eval.datasets import FINAL_ANSWER_HINT
from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import schema_filler

pytest.importorskip("sklearn", reason="scikit-learn: pip install 'reasonkit[eval]'")
pytest.importorskip("matplotlib", reason="matplotlib: pip install 'reasonkit[eval]'")


@pytest.fixture
def env(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    return {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
    }


def test_eval_fit_report_and_a_calibrated_think(env, tmp_path, fake_llm):
    out = tmp_path / "ev"
    args = (
        "eval",
        "--protocol",
        "proofguard",
        "--dataset",
        "claims",
        "--n",
        "4",
        "--format",
        "json",
        "--output",
        str(out),
    )
    r = run_rk(*args, env_extra=env, timeout=180)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["target"] == {"kind": "protocol", "name": "proofguard"}
    for arm in ("tool", "direct"):
        for key in (
            "n",
            "accuracy",
            "ece_equal_width",
            "ece_equal_mass",
            "brier",
            "auroc",
            "selective_accuracy_50",
            "selective_accuracy_80",
            "tokens",
            "cost_usd",
            "time_s",
        ):
            assert key in summary[arm], (arm, key)
        assert summary[arm]["n"] == 4
    assert summary["multiples"]["tokens"] > 1
    assert "[8/8" in r.stderr  # progress on stderr: 4 items x 2 arms
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 8

    calls = len(fake_llm.requests)
    again = run_rk(*args, env_extra=env, timeout=180)  # everything is done: nothing is asked again
    assert again.returncode == 0, again.stderr
    assert len(fake_llm.requests) == calls
    assert json.loads(again.stdout)["tool"] == summary["tool"]

    text = run_rk(*args[:7], "--output", str(out), env_extra=env)  # --format text
    assert (
        text.returncode == 0 and "ECE (15 equal-width bins)" in text.stdout and "tool / direct" in text.stdout
    )

    fit = run_rk("eval", "fit", str(out), "--min-items", "2", env_extra=env)
    assert fit.returncode == 0, fit.stderr
    saved = list((tmp_path / "data" / "calibration").glob("*.json"))
    assert len(saved) == 1 and "calibrator saved to" in fit.stdout

    think = run_rk("think", "--protocol", "proofguard", "--format", "json", "Water is wet.", env_extra=env)
    assert think.returncode == 0, think.stderr
    result = json.loads(think.stdout)
    assert "confidence_raw" in result
    assert result["confidence_breakdown"][-1]["signal"] == "calibration"

    report = run_rk("eval", "report", str(out), env_extra=env)
    assert report.returncode == 0, report.stderr
    assert (out / "report.md").read_text().startswith("# Eval: protocol proofguard on claims")
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eval", "--dataset", "claims"), "give one of --protocol"),
        (("eval", "--protocol", "proofguard", "--profile", "quick", "--dataset", "claims"), "give one of"),
        (("eval", "--protocol", "proofguard"), "give --dataset"),
        (("eval", "--protocol", "proofguard", "--dataset", "nope"), "unknown dataset 'nope'"),
        (("eval", "--protocol", "nope", "--dataset", "claims"), "unknown protocol 'nope'"),
        (("eval", "report", "/nonexistent/folder"), "not an eval output folder"),
        (("eval", "fit", "/nonexistent/folder"), "not an eval output folder"),
    ],
)
def test_bad_requests_are_one_clear_line(env, args, message, fake_llm):
    r = run_rk(*args, env_extra=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert fake_llm.requests == []


def test_a_profile_on_reasoning_gym_without_baseline(env, tmp_path, fake_llm):
    pytest.importorskip("reasoning_gym", reason="reasoning-gym: pip install 'reasonkit[eval]'")
    out = tmp_path / "rg"
    r = run_rk(
        "eval",
        "--profile",
        "quick",
        "--dataset",
        "rg:basic_arithmetic",
        "--n",
        "2",
        "--seed",
        "5",
        "--baseline",
        "none",
        "--format",
        "json",
        "--output",
        str(out),
        env_extra=env,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["target"] == {"kind": "profile", "name": "quick"}
    assert summary["dataset"] == "rg:basic_arithmetic" and summary["seed"] == 5
    assert summary["tool"]["n"] == 2 and summary["direct"] is None
    prompts = json.dumps([q.body for q in fake_llm.requests])
    assert FINAL_ANSWER_HINT in prompts  # tools graded from their text are asked for a "Final answer:" line


def test_a_user_jsonl_dataset(env, tmp_path, fake_llm):
    data = tmp_path / "mine.jsonl"
    data.write_text(
        json.dumps({"id": "q1", "question": "What is 6 x 7?", "answer": "42", "grading": "numeric"}) + "\n"
    )
    out = tmp_path / "mine"
    r = run_rk(
        "eval",
        "--protocol",
        "laserlogic",
        "--dataset",
        str(data),
        "--format",
        "json",
        "--output",
        str(out),
        env_extra=env,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert sorted(r["arm"] for r in rows) == ["direct", "tool"]
    assert all(r["id"] == "q1" and r["expected"] == "42" for r in rows)


def test_a_deeply_nested_dataset_line_is_one_clear_line(env, tmp_path, fake_llm):
    data = tmp_path / "deep.jsonl"
    data.write_text("[" * 1000 + "]" * 1000 + "\n")
    r = run_rk("eval", "--protocol", "laserlogic", "--dataset", str(data), env_extra=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    assert f"{data}: line 1: JSON nested deeper than" in r.stderr
    assert fake_llm.requests == []
