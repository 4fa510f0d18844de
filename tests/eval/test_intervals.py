"""95% bootstrap intervals beside every eval metric, and the warning below 30 items
(reasonkit/eval/metrics.py, reasonkit/eval/report.py)."""

from __future__ import annotations

from reasonkit.eval import metrics


def test_every_metric_has_a_seeded_95_percent_interval():
    confidence = [i / 40 for i in range(40)]
    correct = [i % 3 != 0 for i in range(40)]
    summary = metrics.summarize(confidence, correct)
    assert set(summary["intervals"]) == set(metrics.METRICS)
    for key, (low, high) in summary["intervals"].items():
        assert 0.0 <= low <= high <= 1.0, key
    low, high = summary["intervals"]["accuracy"]
    assert low < summary["accuracy"] < high
    assert metrics.summarize(confidence, correct)["intervals"] == summary["intervals"]  # deterministic
    assert "note" not in summary


def test_below_30_items_ece_and_auroc_come_with_a_warning():
    from reasonkit.eval.report import render_markdown, render_text
    from reasonkit.eval.results import summarize_rows

    rows = [
        {"id": str(i), "arm": "tool", "confidence": 0.6, "correct": i % 2 == 0, "tokens": 1}
        for i in range(10)
    ]
    summary = summarize_rows(rows, {"kind": "protocol", "name": "proofguard", "dataset": "claims", "seed": 0})
    assert "not meaningful below 30" in summary["tool"]["note"]
    text, markdown = render_text(summary), render_markdown(summary)
    for rendered in (text, markdown):
        assert "ECE and AUROC are not meaningful below 30" in rendered
        assert "95% bootstrap interval" in rendered
    accuracy = next(line for line in text.splitlines() if line.startswith("accuracy"))
    low, high = summary["tool"]["intervals"]["accuracy"]
    assert f"[{low:g}, {high:g}]" in accuracy
