"""`check_providers` (the logic of `rk providers check`) against the fake server."""

from __future__ import annotations

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import NoProviderConfigured
from reasonkit.providers.check import ProbeResult, check_providers
from tests.fakes.fake_llm import schema_or_prose

from .conftest import ANTHROPIC_KEY, closed_port

pytestmark = pytest.mark.anyio


async def test_probe_reports_reachability_model_mode_and_latency(fake_llm):
    fake_llm.personality = "llama_cpp_python"
    fake_llm.default = schema_or_prose
    settings = load_settings(
        environ={"OPENAI_BASE_URL": fake_llm.openai_base_url, "LLM_DEFAULT_MODEL": "gpt-4o"}
    )
    [result] = await check_providers(settings)
    assert isinstance(result, ProbeResult)
    assert (result.provider, result.model, result.base_url) == ("openai", "gpt-4o", fake_llm.openai_base_url)
    assert result.ok and result.reachable and result.model_found is True and result.error is None
    assert result.output_mode == "json_object" and result.latency_ms is not None and result.latency_ms > 0
    assert result.models == ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    assert result.output_modes[0]["mode"] == "json_object" and result.output_modes[0]["state"] == "works"
    assert result.as_dict()["output_mode"] == "json_object"
    # one listing, one rejected json_schema, one json_object
    assert [r.status for r in fake_llm.model_listings] == [200]
    assert [r.status for r in fake_llm.requests] == [500, 200]


async def test_every_configured_provider_is_probed_and_failures_are_reported(fake_llm):
    fake_llm.default = schema_or_prose
    fake_llm.personality = "ollama"
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}",  # nothing listens there
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "OPENROUTER_API_KEY": "r",
    }
    settings = load_settings(environ=env)
    settings.llm.providers["openai"].model = "llama9"  # unknown to the server
    settings.llm.providers["openrouter"].api_base = fake_llm.openai_base_url
    settings.llm.providers["openrouter"].model = "gpt-4o-mini"
    results = await check_providers(settings, deadline_secs=10)
    by_name = {r.provider: r for r in results}
    assert [r.provider for r in results] == ["anthropic", "openai", "openrouter"]
    down = by_name["anthropic"]
    assert not down.ok and not down.reachable and down.error_kind == "connection"
    unknown = by_name["openai"]
    assert not unknown.ok and unknown.reachable and unknown.model_found is False
    assert unknown.error_kind == "not_found" and "it serves: gpt-4o-mini" in (unknown.error or "")
    good = by_name["openrouter"]
    assert good.ok and good.output_mode == "json_schema" and good.model_found is True
    assert ANTHROPIC_KEY not in repr(results)


async def test_nothing_configured_is_the_setup_help(no_local):
    with pytest.raises(NoProviderConfigured, match="OPENAI_BASE_URL"):
        await check_providers(load_settings(environ={}))
