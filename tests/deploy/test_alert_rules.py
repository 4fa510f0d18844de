"""`promtool test rules` on the shipped alerts (deploy/monitoring/alerts.yml) and on the deployment
guide's alert rules rewritten on our labels: failed tool calls carry `status="failed"`, so an alert
on the guide's `status="error"` alone never fires; ours does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.conftest import DEPLOY, REPO, require_tool

ALERTS = DEPLOY / "monitoring" / "alerts.yml"
# Tool calls at 6/min each: half complete, half failed (what reasonkit/runs.py counts).
SERIES = [
    {
        "series": 'reasonkit_requests_total{job="reasonkit",method="laserlogic",profile="laserlogic",'
        'status="complete"}',
        "values": "0+6x60",
    },
    {
        "series": 'reasonkit_requests_total{job="reasonkit",method="laserlogic",profile="laserlogic",'
        'status="failed"}',
        "values": "0+6x60",
    },
]
DOC_MARKER = "# The deployment guide's alerts on ReasonKit's labels"


def guide_rules_on_our_labels() -> dict:
    """The guide's three alerts with its thresholds, on our labels: the YAML block of
    docs/operations.md that starts with DOC_MARKER (so the documented rules are the tested ones)."""
    text = (REPO / "docs" / "operations.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    (block,) = [b for b in blocks if b.startswith(DOC_MARKER)]
    return yaml.safe_load(block)


GUIDE_ERROR_RULE_AS_WRITTEN = (
    'sum(rate(reasonkit_requests_total{status="error"}[5m])) / sum(rate(reasonkit_requests_total[5m])) > 0.05'
)


def _promtool_test(tmp_path: Path, rules: Path, tests: list[dict]) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "tests.yml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}, sort_keys=False
        )
    )
    promtool = require_tool("promtool", "Debian package prometheus")
    return subprocess.run([promtool, "test", "rules", str(spec)], capture_output=True, text=True, timeout=120)


def test_shipped_error_rate_alert_fires_on_failed_calls(tmp_path):
    out = _promtool_test(
        tmp_path,
        ALERTS,
        [
            {
                "interval": "1m",
                "input_series": SERIES,
                "alert_rule_test": [
                    {
                        "eval_time": "40m",
                        "alertname": "ReasonKitHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "job": "reasonkit"},
                                "exp_annotations": {
                                    "summary": "More than 5% of ReasonKit tool calls fail",
                                    "description": "50% of tool calls ended failed or error over 10 minutes. "
                                    "Check reasonkit_provider_errors_total by type and the logs.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "5m", "alertname": "ReasonKitHighErrorRate", "exp_alerts": []},  # pending
                ],
            }
        ],
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _guide_file(tmp_path: Path, error_expr: str | None = None) -> Path:
    rules = guide_rules_on_our_labels()
    if error_expr is not None:
        rules["groups"][0]["rules"][0]["expr"] = error_expr
    path = tmp_path / "guide-rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def _exp(severity: str, summary: str) -> dict:
    return {"exp_labels": {"severity": severity}, "exp_annotations": {"summary": summary}}


def test_the_guide_rules_on_our_labels(tmp_path):
    rules = _guide_file(tmp_path)
    check = subprocess.run(
        [require_tool("promtool", "Debian package prometheus"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    names = [r["alert"] for r in guide_rules_on_our_labels()["groups"][0]["rules"]]
    assert names == ["ReasonKitHighErrorRate", "ReasonKitHighLatency", "ReasonKitLowConfidence"]
    slow = [
        {"series": 'reasonkit_request_duration_seconds_bucket{method="think",le="1"}', "values": "0+0x60"},
        {"series": 'reasonkit_request_duration_seconds_bucket{method="think",le="10"}', "values": "0+6x60"},
        {"series": 'reasonkit_request_duration_seconds_bucket{method="think",le="+Inf"}', "values": "0+6x60"},
        {"series": 'reasonkit_confidence_score_bucket{profile="balanced",le="0.5"}', "values": "0+6x120"},
        {"series": 'reasonkit_confidence_score_bucket{profile="balanced",le="+Inf"}', "values": "0+6x120"},
    ]
    out = _promtool_test(
        tmp_path,
        rules,
        [
            {
                "interval": "1m",
                "input_series": SERIES + slow,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ReasonKitHighErrorRate",
                        "exp_alerts": [_exp("critical", "High error rate detected")],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ReasonKitHighLatency",
                        "exp_alerts": [_exp("warning", "High latency detected")],
                    },
                    {
                        "eval_time": "110m",
                        "alertname": "ReasonKitLowConfidence",
                        "exp_alerts": [_exp("warning", "Low confidence scores")],
                    },
                ],
            }
        ],
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_guide_error_rule_as_written_never_fires_on_failed_calls(tmp_path):
    """Why the rules above filter `status=~"failed|error"`: with half the calls failed, the guide's
    `status="error"` as written stays silent (promtool confirms no alert at any time)."""
    rules = _guide_file(tmp_path, GUIDE_ERROR_RULE_AS_WRITTEN)
    out = _promtool_test(
        tmp_path,
        rules,
        [
            {
                "interval": "1m",
                "input_series": SERIES,
                "alert_rule_test": [
                    {"eval_time": t, "alertname": "ReasonKitHighErrorRate", "exp_alerts": []}
                    for t in ("10m", "20m", "40m")
                ],
            }
        ],
    )
    assert out.returncode == 0, out.stdout + out.stderr
