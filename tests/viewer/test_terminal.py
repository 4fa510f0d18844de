"""`rk runs show --full`'s text: every entry and step, why steps were degraded or skipped, outputs
for reading (key fields first, lists as bullets, wrapped to the width)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonkit.viewer import render_full
from reasonkit.viewer.fields import ordered
from reasonkit.viewer.terminal import value_lines
from tests.viewer.runs import made_runs, store_trace


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("terminal") / "data"
    return data, made_runs(data)


def test_key_fields_come_first_and_confidence_and_empty_values_are_left_out():
    output = {"risks": ["r"], "detail": "d", "nested": {"a": 1}, "answer": "A", "confidence": 0.8, "gaps": []}
    assert [k for k, _ in ordered(output)] == ["answer", "detail", "risks", "nested"]


def test_lists_are_bullets_and_long_text_is_wrapped():
    long = "word " * 60
    lines = value_lines(
        {"answer": long, "premises": ["one", {"claim": "c", "support": ["s1", "s2"]}]}, "  ", 50
    )
    assert all(len(line) <= 50 for line in lines), lines
    assert lines[0].startswith("  answer: word") and lines[1].startswith("      word")
    assert "  premises:" in lines
    assert "    - one" in lines and "    - claim: c" in lines and "        - s1" in lines


@pytest.mark.parametrize("status", ["complete", "incomplete", "failed", "cancelled", "interrupted", "budget"])
def test_every_step_is_shown_with_its_numbers(runs, status):
    data, ids = runs
    trace = store_trace(data, ids[status])
    text = render_full(trace, width=80)
    assert text.startswith(f"run {trace['run_id']}")
    assert all(len(line) <= 80 for line in text.splitlines())
    for entry in trace["entries"]:
        assert f"ENTRY {entry['entry']}  {entry['status']}" in text
        for step in entry["steps"]:
            assert f"STEP {step['step_id']} [{step['kind']}]  {step['status']}" in text
    assert f"status      {trace['status']}" in text


def test_reasons_outputs_and_usage_of_an_incomplete_run(runs):
    data, ids = runs
    trace = store_trace(data, ids["incomplete"])
    text = render_full(trace, width=120)
    assess = next(s for s in trace["entries"][0]["steps"] if s["step_id"] == "assess")
    assert "STEP assess [validate]  degraded" in text and "invalid_output" in text
    assert "why: skipped: step 'fallacies' did not produce output" in text
    assert "error: fake: upstream said no <script>" in text
    assert f"{sum(assess['tokens'].values())} tokens ({assess['tokens']['input']} in" in text
    assert "calls: main " in text and "repair" in text  # the degraded step's repair call
    extract = next(s for s in trace["entries"][0]["steps"] if s["step_id"] == "extract")
    assert f"conclusion: {extract['output']['conclusion']}" in text
    assert f"    - {extract['output']['premises'][0]}" in text or "premises:" in text


def test_a_skipped_entry_says_why(runs):
    data, ids = runs
    text = render_full(store_trace(data, ids["budget"]))
    assert "ENTRY laserlogic  skipped" in text and "why skipped: token budget of 2500 reached" in text
