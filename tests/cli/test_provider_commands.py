"""`rk providers check` in a subprocess, against the fake LLM server playing llama-cpp-python's
OpenAI-compatible server (json_schema rejected with a 500 validation error, json_object + schema
accepted)."""

from __future__ import annotations

import json

from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import schema_filler


def test_check_reports_the_negotiated_mode(fake_llm, tmp_path):
    fake_llm.personality = "llama_cpp_python"
    fake_llm.default = schema_filler
    env = {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        "LLM_DEFAULT_MODEL": "gpt-4o-mini",
    }
    r = run_rk("providers", "check", "--format", "json", env_extra=env)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    assert result["provider"] == "openai" and result["ok"] is True and result["reachable"] is True
    assert result["output_mode"] == "json_object"
    text = run_rk("providers", "check", env_extra=env)
    assert text.returncode == 0 and "output mode: json_object" in text.stdout


def test_check_with_a_dead_server_fails_clearly(tmp_path):
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "HOME": str(tmp_path), "LLM_DEFAULT_MODEL": "m"}
    r = run_rk("providers", "check", "--timeout", "5", env_extra=env)
    assert r.returncode == 1 and "FAIL" in r.stdout and "Traceback" not in r.stderr + r.stdout


def test_check_without_any_provider_is_the_setup_help(tmp_path):
    r = run_rk("providers", "check", env_extra={"HOME": str(tmp_path), "LOCAL_MODEL_AUTO": "false"})
    assert r.returncode == 2 and "OPENAI_BASE_URL" in r.stderr
