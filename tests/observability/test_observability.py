"""Metrics registry, logging setup (JSON lines, redaction, stderr only) and health checks."""

from __future__ import annotations

import io
import json

import pytest
from loguru import logger
from prometheus_client import REGISTRY

from reasonkit.config import load_settings
from reasonkit.observability.logging import redact, setup_logging
from reasonkit.observability.metrics import Metrics


# ----------------------------------------------------------------------------- metrics
def test_metrics_live_in_their_own_registry_with_the_guide_names():
    m = Metrics()
    m.know(["think", "balanced"])  # the server registers its tool and profile names (else `other`)
    m.observe_request("think", "balanced", "complete", 1.5)
    m.observe_provider_call(
        "anthropic", 0.4, usage={"input": 10, "output": 5, "cache_read": 2, "cache_write": 0}, cost_usd=0.01
    )
    m.observe_provider_call("anthropic", 0.1, error_type="rate_limit")
    m.set_breaker_state("anthropic", "open")
    m.observe_run("balanced", "complete", 0.83, [])
    body = m.render()[0].decode()
    assert 'reasonkit_requests_total{method="think",profile="balanced",status="complete"} 1.0' in body
    assert 'reasonkit_request_duration_seconds_bucket{le="2.5",method="think"} 1.0' in body
    assert 'reasonkit_llm_tokens_total{provider="anthropic",type="input"} 10.0' in body
    assert 'reasonkit_llm_tokens_total{provider="anthropic",type="cache_read"} 2.0' in body
    assert 'type="cache_write"' not in body  # zero counts add no series
    assert 'reasonkit_confidence_score_bucket{le="0.9",profile="balanced"} 1.0' in body
    assert 'reasonkit_confidence_score_bucket{le="0.8",profile="balanced"} 0.0' in body
    assert 'reasonkit_provider_errors_total{provider="anthropic",type="rate_limit"} 1.0' in body
    assert 'reasonkit_cost_usd_total{provider="anthropic"} 0.01' in body
    assert 'reasonkit_circuit_breaker_state{provider="anthropic"} 2.0' in body
    for name in (
        "reasonkit_step_duration_seconds",
        "reasonkit_provider_call_duration_seconds",
        "reasonkit_inflight_requests",
        "reasonkit_cache_hits_total",
    ):
        assert f"# TYPE {name}" in body
    # nothing leaked into the process-global default registry
    assert (
        REGISTRY.get_sample_value(
            "reasonkit_requests_total", {"method": "think", "profile": "balanced", "status": "complete"}
        )
        is None
    )


def test_step_durations_and_no_confidence_for_failed_runs():
    m = Metrics()
    m.observe_run("gigathink", "failed", 0.0, [("gigathink", "dimensions", 1.2)])
    body = m.render()[0].decode()
    assert 'reasonkit_step_duration_seconds_count{protocol="gigathink",step="dimensions"} 1.0' in body
    assert "reasonkit_confidence_score_count" not in body


def test_inflight_gauge():
    m = Metrics()
    with m.track_inflight():
        assert "reasonkit_inflight_requests 1.0" in m.render()[0].decode()
    assert "reasonkit_inflight_requests 0.0" in m.render()[0].decode()


# ----------------------------------------------------------------------------- logging
@pytest.fixture
def restore_logging():
    import logging
    import sys

    from reasonkit.observability.logging import InterceptHandler

    root = logging.getLogger()
    level = root.level
    yield
    root.handlers = [h for h in root.handlers if not isinstance(h, InterceptHandler)]
    root.setLevel(level)
    logger.remove()
    logger.add(sys.stderr)


def test_json_logs_one_object_per_line_with_context_fields(restore_logging):
    buf = io.StringIO()
    s = load_settings(environ={"LOG_FORMAT": "json", "LOG_LEVEL": "debug"})
    setup_logging(s, stream=buf)
    logger.bind(
        request_id="7", tool="think", profile="balanced", duration_ms=12.5, confidence=0.81, tokens=420
    ).info("run finished")
    logger.debug("plain")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["level"] == "INFO" and first["message"] == "run finished"
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert (
        first["request_id"],
        first["tool"],
        first["profile"],
        first["duration_ms"],
        first["confidence"],
        first["tokens"],
    ) == ("7", "think", "balanced", 12.5, 0.81, 420)
    assert lines[1]["level"] == "DEBUG"


def test_level_from_rust_log_and_stdlib_records_are_routed(restore_logging):
    import logging

    buf = io.StringIO()
    s = load_settings(environ={"RUST_LOG": "reasonkit=warn,hyper=info"})
    assert s.logging.level == "warn"
    setup_logging(s, stream=buf)
    logger.info("hidden")
    logger.warning("shown")
    logging.getLogger("mcp.server").warning("from the sdk")
    out = buf.getvalue()
    assert "hidden" not in out and "shown" in out and "from the sdk" in out


def test_secrets_never_reach_the_log(restore_logging):
    buf = io.StringIO()
    s = load_settings(
        environ={
            "ANTHROPIC_API_KEY": "sk-ant-api03-SECRETSECRET",
            "OPENAI_API_KEY": "plainsecretvalue42",
            "LOG_FORMAT": "json",
        }
    )
    setup_logging(s, stream=buf)
    logger.bind(headers={"Authorization": "Bearer abcdefghijklmnop"}).info(
        "key sk-ant-api03-SECRETSECRET and plainsecretvalue42 and x-api-key: zzzzzzzzzz"
    )
    logger.info("url redis://user:hunter2@redis:6379/0 Authorization: Bearer tok_123456789")
    out = buf.getvalue()
    for secret in (
        "SECRETSECRET",
        "plainsecretvalue42",
        "abcdefghijklmnop",
        "zzzzzzzzzz",
        "hunter2",
        "tok_123456789",
    ):
        assert secret not in out, out
    assert redact("api_key=abc123def456") == "api_key=***"


def test_text_logs_go_to_the_given_stream_only(restore_logging, capsys):
    buf = io.StringIO()
    setup_logging(load_settings(environ={}), stream=buf)
    logger.bind(tool="tiny").info("hello {braces}")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert "hello {braces}" in buf.getvalue() and "tool=tiny" in buf.getvalue()
