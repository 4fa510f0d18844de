"""The provider kind registry: a new kind is one row, and config, provider choice and building,
/health, `rk mcp-config`, logging and the run service's notices pick it up with no other edit."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from reasonkit import provider_kinds
from reasonkit.config import ENV_VARS, load_settings
from reasonkit.provider_kinds import KINDS, ProviderKind

pytestmark = pytest.mark.anyio

GROQ = ProviderKind(
    "groq",
    "Groq",
    "reasonkit.providers.openai_compat:OpenAIProvider",  # an OpenAI-compatible API: no module of its own
    default_model="llama-3.3-70b-versatile",
    key_env="GROQ_API_KEY",
    endpoint="https://api.groq.com/openai/v1",
    loggers=("groq",),
    setup=(("GROQ_API_KEY=...", "Groq"),),
)


@pytest.fixture
def groq(monkeypatch: pytest.MonkeyPatch) -> ProviderKind:
    monkeypatch.setitem(KINDS, GROQ.name, GROQ)
    return GROQ


def test_config_reads_the_new_kinds_variables(groq):
    settings = load_settings(environ={"GROQ_API_KEY": "gk-secret"})
    ps = settings.llm.providers["groq"]
    assert ps.api_key is not None and ps.api_key.get_secret_value() == "gk-secret"
    assert provider_kinds.env_vars()["GROQ_API_KEY"] == "llm.providers.groq.api_key"
    assert "GROQ_API_KEY" in provider_kinds.setup_vars()


async def test_the_new_kind_is_chosen_and_built_from_its_row(groq):
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers import choose_provider_name
    from reasonkit.providers.openai_compat import OpenAIProvider
    from reasonkit.providers.stack import build_one

    settings = load_settings(environ={"GROQ_API_KEY": "gk-secret"})
    assert choose_provider_name(settings) == "groq"
    provider = build_one(settings, "groq", None, fallback=False, metrics=Metrics())
    try:
        assert isinstance(provider, OpenAIProvider)
        assert provider.model == "llama-3.3-70b-versatile"
        assert provider.base_url == "https://api.groq.com/openai/v1"
    finally:
        await provider.aclose()


async def test_health_probes_the_new_kinds_default_endpoint(groq, monkeypatch):
    from reasonkit.server.http import health

    probed: list[tuple[str, int]] = []

    async def tcp_check(host: str, port: int, ping: bytes | None = None) -> tuple[bool, float, str]:
        probed.append((host, port))
        return True, 1.0, ""

    monkeypatch.setattr(health, "_tcp_check", tcp_check)
    checker = health.HealthChecker(load_settings(environ={"GROQ_API_KEY": "gk-secret"}), "1")
    check = await checker.llm_provider()
    assert probed == [("api.groq.com", 443)]
    assert check["provider"] == "groq" and check["status"] == "healthy"
    assert check["endpoint"] == "api.groq.com:443"


def test_mcp_config_offers_the_new_kinds_key_placeholder(groq):
    from reasonkit.cli.server_commands import client_config

    assert provider_kinds.client_setups()["groq"] == {"GROQ_API_KEY": "<your Groq API key>"}
    text, hint = client_config("claude-desktop", "stdio", "http://127.0.0.1:9100/mcp", "groq")
    assert '"GROQ_API_KEY": "<your Groq API key>"' in text
    assert "Replace the placeholder key." in hint


def test_logging_routes_the_new_kinds_sdk_logger(groq):
    from reasonkit.observability.logging import setup_logging

    lg = logging.getLogger("groq")
    lg.propagate = False
    try:
        setup_logging(level="info")
        assert lg.propagate and lg.level == logging.WARNING
    finally:
        setup_logging(level="info")


def test_a_kind_with_a_notice_says_it_when_nobody_chose_it(monkeypatch):
    row = ProviderKind(
        "tiny",
        "a tiny model",
        "reasonkit.providers.fake:FakeProvider",
        in_process=True,
        notice="running {model}; for real work set {setup}",
    )
    monkeypatch.setitem(KINDS, row.name, row)
    text = provider_kinds.notice("tiny", "tiny-1")
    assert text is not None and text.startswith("running tiny-1; for real work set ANTHROPIC_API_KEY")
    assert provider_kinds.notice("groq", "m") is None  # not a kind: nothing to say


def test_the_registry_is_what_the_rest_reads():
    # the import-time environment table and the CLI help come from the rows, in registry order
    assert [v for v in ENV_VARS if v.endswith(("_API_KEY", "_BASE_URL"))] == list(provider_kinds.env_vars())
    assert provider_kinds.names_help().startswith(", ".join(provider_kinds.kind_names()))
    wires: Any = provider_kinds.wire_formats()
    assert wires == ("anthropic", "openai")
