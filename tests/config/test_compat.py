"""The deployment guide's own files load: its `config/default.toml`, its `.env`, its `[llm.rate_limiting]`
block and the neighbouring guides' variables, copied verbatim into tests/config/data/ (from
/work/shared/guides). Every key is honoured or explained by one warning; typos still fail."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import ConfigError
from reasonkit.observability.logging import setup_logging

DATA = Path(__file__).parent / "data"
GUIDE_TOML = DATA / "guide-default.toml"
GUIDE_ENV = DATA / "guide.env"


def read_env(path: Path) -> dict[str, str]:
    """KEY=value lines, as docker compose's env_file and systemd's EnvironmentFile read them."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    return env


def test_the_guide_default_toml_and_env_load_with_mapped_values():
    settings = load_settings(GUIDE_TOML, environ=read_env(GUIDE_ENV))
    assert settings.server.host == "0.0.0.0" and settings.server.port == 8080
    assert settings.server.tool_deadline_secs == 300  # [server] timeout_secs
    assert settings.logging.format == "json" and settings.logging.include_timestamps is True
    assert settings.features.metrics and settings.features.cache  # enable_metrics, enable_cache
    assert settings.features.tracing and settings.tracing.enabled  # enable_tracing: one switch
    assert settings.database.redis.url is not None
    assert settings.database.redis.url.get_secret_value() == "redis://redis:6379"  # REDIS_URL beats the file
    assert settings.database.redis.max_connections == 10
    assert settings.llm.default_model == "claude-sonnet-4-20250514"
    assert settings.llm.providers["anthropic"].timeout_secs == 120
    assert settings.llm.providers["anthropic"].api_key is not None
    assert settings.security.allowed_origins == ["https://reasonkit.sh", "https://api.reasonkit.sh"]
    assert settings.security.rate_limit_per_minute == 100
    assert settings.env == "production"
    notes = settings.compat_notes
    assert len(notes) == 2, notes  # [database.qdrant] in the file, QDRANT_URL in .env: one each
    qdrant_file = next(n for n in notes if "[database.qdrant]" in n)
    assert "(collection_prefix, url) is ignored" in qdrant_file and "no vector memory" in qdrant_file
    assert any(n.startswith("QDRANT_URL is ignored:") and "no vector memory" in n for n in notes)


def test_the_guide_rate_limiting_block_is_honoured(tmp_path):
    cfg = tmp_path / "default.toml"
    cfg.write_text(
        (DATA / "guide-rate-limiting.toml").read_text()
        + '\n[llm.providers.openrouter]\napi_key = "sk-or-test"\n'
        + '[llm.providers.openai]\napi_key = "sk-test"\nmax_retries = 5\n'
    )
    settings = load_settings(cfg, environ={})
    rl = settings.llm.rate_limiting
    assert rl.strategy == "queue" and rl.queue_size == 1000
    assert settings.llm.fallback_provider == ["openrouter"]
    openrouter, openai = settings.llm.providers["openrouter"], settings.llm.providers["openai"]
    assert openrouter.max_retries == 3 and openrouter.retry_base_delay_secs == 1.0
    assert openai.max_retries == 5  # the provider's own setting wins over the guide's default
    assert settings.compat_notes == []


def test_guide_variables_are_mapped():
    env = read_env(DATA / "kite-optional.env") | {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "OPENAI_API_KEY": "sk-test",
        "ENABLE_TRACING": "true",
        "OTLP_ENDPOINT": "http://jaeger:4317",
        "L1_CACHE_SIZE": "500",
        "L2_TTL_SECONDS": "3600",
    }
    settings = load_settings(None, environ=env)
    for name in ("anthropic", "openai"):  # CIRCUIT_BREAKER_* reach every provider
        ps = settings.llm.providers[name]
        assert ps.breaker_threshold == 3 and ps.breaker_cooldown_secs == 60
    assert settings.server.idempotency_ttl_secs == 3600  # IDEMPOTENCY_TTL
    assert settings.features.tracing and settings.tracing.enabled
    assert settings.tracing.endpoint == "http://jaeger:4317"
    assert settings.llm.cache.max_entries == 500 and settings.llm.cache.ttl_secs == 3600
    assert settings.compat_notes == []
    # OTEL_EXPORTER_OTLP_ENDPOINT is the standard name: it wins over the guide's alias
    both = load_settings(
        None, environ={"OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318"}
    )
    assert both.tracing.endpoint == "http://b:4318"


def test_environment_breaker_beats_the_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm.providers.openai]\napi_key = "sk-x"\nbreaker_threshold = 7\n')
    assert load_settings(cfg, environ={}).llm.providers["openai"].breaker_threshold == 7
    env = {"CIRCUIT_BREAKER_THRESHOLD": "2"}
    assert load_settings(cfg, environ=env).llm.providers["openai"].breaker_threshold == 2


def test_cache_ttls():
    l1_only = load_settings(None, environ={"L1_TTL_SECONDS": "300"})
    assert l1_only.llm.cache.ttl_secs == 300 and l1_only.compat_notes == []
    both = load_settings(None, environ={"L1_TTL_SECONDS": "300", "L2_TTL_SECONDS": "3600"})
    assert both.llm.cache.ttl_secs == 3600
    assert both.compat_notes == [
        "L1_TTL_SECONDS=300 is not used: ReasonKit's memory and Redis cache layers share one TTL, "
        "[llm.cache] ttl_secs, here L2_TTL_SECONDS=3600"
    ]


def test_unused_variables_get_one_warning_each_without_their_values():
    env = {
        "QDRANT_URL": "http://qdrant:6333",
        "QDRANT_API_KEY": "qdrant-secret-value",
        "TLS_CERT_PATH": "/etc/ssl/certs/server.crt",
        "ENABLE_HEALTH_CHECKS": "false",
        "ENABLE_L2_CACHE": "false",
    }
    notes = load_settings(None, environ=env).compat_notes
    assert [n.split(" ", 1)[0] for n in notes] == [
        "QDRANT_URL",
        "QDRANT_API_KEY",
        "TLS_CERT_PATH",
        "ENABLE_HEALTH_CHECKS=false",
        "ENABLE_L2_CACHE=false",
    ]
    assert "qdrant-secret-value" not in " ".join(notes)
    tls = notes[2]
    assert "would serve HTTPS" in tls and "reverse proxy" in tls
    assert "always serves /health" in notes[3]
    # the default (true) needs no warning
    assert load_settings(None, environ={"ENABLE_HEALTH_CHECKS": "true"}).compat_notes == []


def test_warnings_are_logged_once_as_json():
    settings = load_settings(GUIDE_TOML, environ=read_env(GUIDE_ENV))
    out = io.StringIO()
    setup_logging(settings, stream=out)
    setup_logging(settings, stream=out)  # a reload: not again
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    warnings = [line["message"] for line in lines if line["level"] == "WARNING"]
    assert sum("[database.qdrant]" in w for w in warnings) == 1, warnings
    assert sum(w.startswith("QDRANT_URL is ignored") for w in warnings) == 1, warnings
    assert all("timestamp" in line for line in lines)


def test_include_timestamps_false_drops_the_time(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[logging]\nformat = "json"\ninclude_timestamps = false\n')
    out = io.StringIO()
    setup_logging(load_settings(cfg, environ={}), stream=out)
    from loguru import logger

    logger.warning("stamp check")
    (line,) = [json.loads(x) for x in out.getvalue().splitlines() if "stamp check" in x]
    assert "timestamp" not in line and line["message"] == "stamp check"
    text = tmp_path / "t.toml"
    text.write_text("[logging]\ninclude_timestamps = false\n")
    out = io.StringIO()
    setup_logging(load_settings(text, environ={}), stream=out)
    logger.warning("stamp check")
    assert out.getvalue().startswith("WARNING | stamp check"), out.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[server]\ntimeout_sec = 300\n",
            "server.timeout_sec: unknown setting (did you mean 'timeout_secs'?)",
        ),
        ("[features]\nenable_metric = true\n", "did you mean 'enable_metrics'?"),
        ("[llm.rate_limiting]\nretry_atempts = 3\n", "did you mean 'retry_attempts'?"),
        ("[llm.providers.anthropic]\ntimeout_sec = 3\n", "did you mean 'timeout_secs'?"),
        ("[logging]\ninclude_timestamp = true\n", "did you mean 'include_timestamps'?"),
        ("[database.redis]\nmax_conections = 3\n", "did you mean 'max_connections'?"),
    ],
)
def test_typos_still_fail_with_did_you_mean(tmp_path, text, expected):
    cfg = tmp_path / "typo.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert expected in str(info.value)


def test_rk_starts_with_the_guide_files(tmp_path):
    """`rk config show` with the guide's file as /app/config/default.toml would be found: exit 0, the
    mapped values shown, secrets masked."""
    import subprocess
    import sys

    cfg = tmp_path / "default.toml"
    shutil.copy(GUIDE_TOML, cfg)
    env = read_env(GUIDE_ENV) | {"REASONKIT_CONFIG": str(cfg), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "tool_deadline_secs = 300" in out.stdout
    assert "sk-ant-api03-" not in out.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CIRCUIT_BREAKER_THRESHOLD": "three"}, "CIRCUIT_BREAKER_THRESHOLD: must be a whole number >= 0"),
        ({"CIRCUIT_BREAKER_TIMEOUT": "-1"}, "CIRCUIT_BREAKER_TIMEOUT: must be a number >= 0 (got '-1')"),
        ({"IDEMPOTENCY_TTL": "soon"}, "server.idempotency_ttl_secs (environment variable IDEMPOTENCY_TTL)"),
    ],
)
def test_bad_guide_variables_name_the_variable(env, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=env)
    assert expected in str(info.value)


def test_bad_guide_rate_limiting_values_name_the_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm.rate_limiting]\nretry_attempts = "3"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert "llm.rate_limiting.retry_attempts: must be a whole number >= 0 (got '3')" in str(info.value)
