"""Output-mode negotiation against fake servers that behave like the real ones (tests/fakes
PERSONALITIES), through the real SDKs: the mode auto lands on, no retries spent on rejections,
the mode remembered, forced modes, and honest error kinds."""

from __future__ import annotations

import json

import pytest

from reasonkit.config import ProviderSettings, load_settings
from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.providers import PriceTable, output_mode_setting
from reasonkit.providers.anthropic import AnthropicProvider
from reasonkit.providers.negotiation import NEGOTIATION
from reasonkit.providers.openai_compat import OpenAIProvider
from tests.fakes.fake_llm import Reply, schema_or_prose

from .conftest import SCHEMA, breaker_of, make_settings, open_provider, request, sample

pytestmark = pytest.mark.anyio

# personality -> (mode auto lands on, requests the first call makes)
LANDS_ON = {
    "openai": ("json_schema", 1),
    "llama_cpp_python": ("json_object", 2),
    "llama_server": ("json_schema", 1),
    "ollama": ("json_schema", 1),
    "vllm": ("json_schema", 1),
    "lm_studio": ("json_schema", 1),
    "no_tools": ("prompt", 4),
}


def _openai(fake, **kw) -> OpenAIProvider:
    return OpenAIProvider(
        "openai",
        "gpt-4o-mini",
        PriceTable.load(),
        api_key=None,
        base_url=fake.openai_base_url,
        timeout=10,
        **kw,
    )


@pytest.mark.parametrize("personality", sorted(LANDS_ON))
async def test_auto_lands_on_the_mode_the_server_takes(fake_llm, personality, log_lines):
    mode, first_requests = LANDS_ON[personality]
    fake_llm.personality = personality
    fake_llm.default = schema_or_prose
    m = Metrics()
    async with open_provider(make_settings("openai", fake_llm.openai_base_url), m) as p:
        r = await p.complete(request())
        assert len(fake_llm.requests) == first_requests  # one request per rejected mode, no retries
        assert r.output_mode == mode and r.attempts == 1
        assert json.loads(r.text) == {"answer": "answer", "confidence": 0.8}
        fake_llm.requests.clear()
        again = await p.complete(request("again"))
        assert len(fake_llm.requests) == 1 and again.output_mode == mode  # remembered
        rows = p.output_modes()
    assert sample(m, "reasonkit_provider_retries_total", provider="openai", type="server") == 0
    assert [(row["mode"], row["state"]) for row in rows] == [(mode, "works")]
    assert len([r for r in rows[0]["failed"] if r["reason"].startswith("rejected")]) == first_requests - 1
    assert [line for line in log_lines if "): structured output via" in line] == [
        f"INFO|provider openai ({fake_llm.openai_base_url}, gpt-4.1-mini): structured output via {mode}"
    ]


async def test_llama_cpp_python_request_bodies(fake_llm):
    fake_llm.personality = "llama_cpp_python"
    fake_llm.default = schema_or_prose
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        await p.complete(request())
    rejected, accepted = fake_llm.requests
    assert rejected.status == 500 and rejected.body["response_format"]["type"] == "json_schema"
    assert accepted.body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    system = accepted.body["messages"][0]
    assert system["role"] == "system" and "<schema>" in system["content"]  # also in the prompt


async def test_no_tools_server_lands_on_prompt_with_the_schema_in_the_system_prompt(fake_llm):
    fake_llm.personality = "no_tools"
    fake_llm.default = schema_or_prose
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        r = await p.complete(request())
    sent = [req.body for req in fake_llm.requests]
    assert [req.status for req in fake_llm.requests] == [422, 422, 422, 200]
    assert "tools" in sent[2] and sent[2]["tool_choice"]["function"]["name"] == "respond"
    assert "response_format" not in sent[3] and "tools" not in sent[3]
    assert "<schema>" in sent[3]["messages"][0]["content"]
    assert r.structured == "json_text" and r.parsed is None


async def test_gateway_that_strips_response_format_is_noticed(fake_llm, log_lines):
    fake_llm.personality = "strips_response_format"
    fake_llm.default = schema_or_prose
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        first = await p.complete(request())
        # the model never saw a schema: prose comes back as it is (the engine repairs it) ...
        assert first.output_mode == "json_schema" and "{" not in first.text
        # ... and later calls use the next mode, whose schema is in the prompt too
        second = await p.complete(request("again"))
        third = await p.complete(request("and again"))
        rows = p.output_modes()
    assert second.output_mode == third.output_mode == "json_object"
    assert json.loads(third.text) == {"answer": "answer", "confidence": 0.8}
    assert len(fake_llm.requests) == 3
    assert rows[0]["mode"] == "json_object" and rows[0]["state"] == "works"
    assert rows[0]["failed"][0]["mode"] == "json_schema" and rows[0]["failed"][0]["reason"].startswith(
        "ignored"
    )
    assert any("carried no JSON" in line and line.startswith("WARNING") for line in log_lines)


async def test_forced_tools_mode_parses_the_arguments(fake_llm):
    fake_llm.default = schema_or_prose
    p = _openai(fake_llm, output_mode="tools")
    try:
        r = await p.complete(request())
    finally:
        await p.aclose()
    body = fake_llm.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "respond"}}
    assert body["tools"][0]["function"]["parameters"] == SCHEMA and "response_format" not in body
    assert "calling the function `respond`" in body["messages"][0]["content"]
    assert r.parsed == {"answer": "answer", "confidence": 0.8} and r.output_mode == "tools"
    assert p.output_modes()[0]["state"] == "forced"


async def test_forced_mode_is_used_as_is_and_its_rejection_names_the_setting(fake_llm):
    fake_llm.personality = "lm_studio"
    fake_llm.default = schema_or_prose
    p = _openai(fake_llm, output_mode="json_object")
    try:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    finally:
        await p.aclose()
    assert err.value.kind == "unsupported" and not err.value.retryable
    assert 'output_mode = "json_object"' in str(err.value) and "must be 'json_schema'" in str(err.value)
    assert len(fake_llm.requests) == 1


async def test_forced_prompt_mode_sends_no_output_fields(fake_llm):
    fake_llm.default = schema_or_prose
    p = _openai(fake_llm, output_mode="prompt")
    try:
        r = await p.complete(request())
    finally:
        await p.aclose()
    body = fake_llm.requests[0].body
    assert "response_format" not in body and "tools" not in body
    assert json.loads(r.text)["confidence"] == 0.8


def test_output_mode_setting_resolution():
    settings = load_settings(environ={"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    assert output_mode_setting(settings, "openai") == "auto"
    settings.llm.output_mode = "tools"
    assert output_mode_setting(settings, "openai") == "tools"  # inherited
    settings.llm.providers["openai"].output_mode = "prompt"
    assert output_mode_setting(settings, "openai") == "prompt"  # the provider's own wins
    # the deprecated structured_output, mapped by the settings model
    settings.llm.providers["old"] = ProviderSettings(api_base="http://h/v1", structured_output="json_text")
    assert output_mode_setting(settings, "old") == "prompt"


async def test_output_mode_from_the_settings_reaches_the_provider(fake_llm):
    fake_llm.default = schema_or_prose
    settings = make_settings("openai", fake_llm.openai_base_url)
    settings.llm.output_mode = "json_object"
    async with open_provider(settings) as p:
        r = await p.complete(request())
        assert p.output_modes()[0]["state"] == "forced"
    assert fake_llm.requests[0].body["response_format"]["type"] == "json_object"
    assert r.output_mode == "json_object"


async def test_anthropic_falls_back_from_tools_to_prompt(fake_llm):
    fake_llm.push(
        Reply(status=400, text="tools: this server does not support tool use"),
        Reply(text='{"answer": "x", "confidence": 0.5}'),
        Reply(text='{"answer": "y", "confidence": 0.5}'),
    )
    p = AnthropicProvider(
        "anthropic",
        "claude-haiku-4-5",
        PriceTable.load(),
        api_key="k",
        base_url=fake_llm.anthropic_base_url,
        timeout=10,
    )
    try:
        r = await p.complete(request())
        again = await p.complete(request())
    finally:
        await p.aclose()
    first, second, third = (req.body for req in fake_llm.requests)
    assert "tools" in first and "tools" not in second and "<schema>" in second["system"]
    assert r.output_mode == again.output_mode == "prompt" and "tools" not in third
    assert r.attempts == 1


async def test_anthropic_forced_tool_keeps_the_system_prompt_clean(fake_llm):
    fake_llm.push(Reply(json={"answer": "x", "confidence": 0.5}))
    p = AnthropicProvider(
        "anthropic",
        "claude-haiku-4-5",
        PriceTable.load(),
        api_key="k",
        base_url=fake_llm.anthropic_base_url,
        timeout=10,
    )
    try:
        r = await p.complete(request(system="sys"))
    finally:
        await p.aclose()
    assert fake_llm.requests[0].body["system"] == "sys" and r.output_mode == "tools"


# --------------------------------------------------------------------------------------------------
# Honest errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("personality", ["openai", "llama_cpp_python", "llama_server", "vllm"])
async def test_context_overflow_is_its_own_kind_with_the_sizes(fake_llm, personality):
    # llama-cpp-python validates the request first: its json_schema rejection comes before the overflow
    expected_requests = 2 if personality == "llama_cpp_python" else 1
    fake_llm.personality = personality
    fake_llm.context_window = 100
    fake_llm.default = schema_or_prose
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request("word " * 200, max_tokens=50))
        assert (breaker := breaker_of(p)) is not None and breaker.failures == 0
    assert err.value.kind == "context_overflow" and not err.value.retryable
    assert "context window" in str(err.value) and "the window is 100" in str(err.value)
    assert len(fake_llm.requests) == expected_requests  # not retried, no further mode tried


@pytest.mark.parametrize("personality", ["openai", "ollama", "vllm"])
async def test_unknown_model_lists_the_servers_models(fake_llm, personality):
    fake_llm.personality = personality
    fake_llm.default = schema_or_prose
    settings = make_settings("openai", fake_llm.openai_base_url, LLM_DEFAULT_MODEL="llama9")
    async with open_provider(settings) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    assert err.value.kind == "not_found" and not err.value.retryable
    assert "does not know model 'llama9'" in str(err.value)
    assert "it serves: gpt-4o-mini, gpt-4o, gpt-4.1-mini" in str(err.value)
    assert [(r.method, r.path) for r in fake_llm.requests] == [("POST", "/v1/chat/completions")]
    # the first call asks a server on this machine whether it is serial (openai_compat._serial),
    # then the not-found error lists the models it serves
    assert [(r.method, r.path) for r in fake_llm.model_listings] == [("GET", "/v1/models")] * 2


async def test_404_for_a_listed_model_points_at_the_base_url(fake_llm):
    fake_llm.push(Reply(status=404, text="Not Found"))
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    assert err.value.kind == "not_found" and "check the base URL" in str(err.value)


async def test_validation_error_sent_as_500_is_a_bad_request_not_retried(fake_llm):
    detail = (
        "[{'type': 'int_parsing', 'loc': ('body', 'max_tokens'), 'msg': 'Input should be a valid integer'}]"
    )
    fake_llm.push(Reply(status=500, text=detail, error_type="internal_server_error"))
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    assert err.value.kind == "bad_request" and "request-validation error" in str(err.value)
    assert len(fake_llm.requests) == 1


async def test_a_real_500_is_still_retried(fake_llm):
    fake_llm.push(Reply(status=500), Reply(json={"answer": "x", "confidence": 0.5}))
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        r = await p.complete(request())
    assert r.attempts == 2 and r.output_mode == "json_schema"


async def test_rejection_then_server_fault_keeps_the_negotiated_mode(fake_llm):
    """A retry after a server fault goes out in the mode negotiated so far, not from the start."""
    fake_llm.personality = "llama_cpp_python"
    fake_llm.push(Reply(status=400, text="response_format: unsupported"), Reply(status=503))
    fake_llm.default = schema_or_prose
    async with open_provider(make_settings("openai", fake_llm.openai_base_url)) as p:
        r = await p.complete(request())
    # json_schema is refused by the personality itself (no reply consumed), json_object gets the
    # scripted 400 rejection... which names response_format, so tools is next; then a 503 retry
    modes = [
        (req.body.get("response_format") or {}).get("type") or ("tools" if "tools" in req.body else "prompt")
        for req in fake_llm.requests
    ]
    assert modes == ["json_schema", "json_object", "tools", "tools"]
    assert r.output_mode == "tools" and r.attempts == 2


def test_table_is_per_base_url_and_model():
    NEGOTIATION.mode_for(("p", "http://a/v1", "m1"), ("json_schema", "json_object"))
    NEGOTIATION.rejected(("p", "http://a/v1", "m1"), "json_schema", "no")
    assert NEGOTIATION.mode_for(("p", "http://a/v1", "m1"), ("json_schema", "json_object")) == "json_object"
    assert NEGOTIATION.mode_for(("p", "http://a/v1", "m2"), ("json_schema", "json_object")) == "json_schema"
    assert NEGOTIATION.mode_for(("p", "http://b/v1", "m1"), ("json_schema", "json_object")) == "json_schema"
