"""Provider selection, wire formats, usage normalization and cost, through the real SDKs."""

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.providers import LLMRequest, PriceTable, Usage, choose_provider_name
from reasonkit.providers.stack import build_provider
from tests.fakes.fake_llm import Reply

pytestmark = pytest.mark.anyio
SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
}


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, "anthropic"),
        ({"OPENAI_API_KEY": "o"}, "openai"),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, "openai"),
        ({"OPENROUTER_API_KEY": "r"}, "openrouter"),
        ({"ANTHROPIC_API_KEY": "a", "LLM_DEFAULT_PROVIDER": "openai", "OPENAI_API_KEY": "o"}, "openai"),
    ],
)
def test_choose_provider(env, expected):
    assert choose_provider_name(load_settings(environ=env)) == expected


def test_no_provider_says_what_to_set(no_local):
    with pytest.raises(NoProviderConfigured) as err:
        build_provider(load_settings(environ={}))
    msg = str(err.value)
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENROUTER_API_KEY",
        "default_provider",
    ):
        assert name in msg
    assert "pip install 'reasonkit[local]'" in msg
    with pytest.raises(NoProviderConfigured, match="unknown provider 'nope'"):
        build_provider(load_settings(environ={"LLM_DEFAULT_PROVIDER": "nope"}))


def test_local_is_the_zero_configuration_default(monkeypatch):
    import reasonkit.providers as providers

    monkeypatch.setattr(providers, "kind_available", lambda kind, settings=None: True)
    assert choose_provider_name(load_settings(environ={})) == "local"
    # anything configured still wins over it
    assert choose_provider_name(load_settings(environ={"OPENAI_API_KEY": "o"})) == "openai"
    # and it can be turned off: then the setup help, as without the extra
    with pytest.raises(NoProviderConfigured, match="LOCAL_MODEL_AUTO=false"):
        choose_provider_name(load_settings(environ={"LOCAL_MODEL_AUTO": "false"}))


def test_model_choice_and_openrouter_base():
    p = build_provider(
        load_settings(environ={"OPENROUTER_API_KEY": "r", "LLM_DEFAULT_MODEL": "openai/gpt-4o-mini"})
    )
    assert p.name == "openrouter" and p.model == "openai/gpt-4o-mini"
    assert str(p.base_url).startswith("https://openrouter.ai/api/v1")


async def test_anthropic_forced_tool_and_usage(fake_llm):
    fake_llm.push(
        Reply(
            json={"answer": "x", "confidence": 0.7},
            usage={"input": 100, "output": 20, "cache_read": 50, "cache_write": 10},
        )
    )
    p = build_provider(
        load_settings(
            environ={
                "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url,
                "ANTHROPIC_API_KEY": "sk-test",
                "LLM_DEFAULT_MODEL": "claude-haiku-4-5",
            }
        )
    )
    try:
        r = await p.complete(
            LLMRequest(
                messages=[{"role": "user", "content": "hi"}],
                system="sys",
                schema=SCHEMA,
                schema_name="s1_result",
            )
        )
    finally:
        await p.aclose()
    body = fake_llm.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "s1_result"}
    assert body["tools"][0]["input_schema"] == SCHEMA and body["system"] == "sys"
    headers = fake_llm.requests[0].headers
    assert "sk-test" in headers.get("x-api-key", headers.get("authorization", ""))
    assert r.parsed == {"answer": "x", "confidence": 0.7}
    assert r.usage == Usage(input=100, output=20, cache_read=50, cache_write=10)
    # claude-haiku-4-5: $1 in, $5 out, $0.10 cache read, $1.25 cache write per Mtok
    assert r.cost_usd == pytest.approx((100 * 1 + 20 * 5 + 50 * 0.1 + 10 * 1.25) / 1e6)


async def test_openai_json_schema_and_cached_tokens(fake_llm):
    fake_llm.push(
        Reply(json={"answer": "x", "confidence": 0.7}, usage={"input": 100, "output": 20, "cache_read": 40})
    )
    p = build_provider(
        load_settings(
            environ={"OPENAI_BASE_URL": fake_llm.openai_base_url, "LLM_DEFAULT_MODEL": "gpt-4o-mini"}
        )
    )
    try:
        r = await p.complete(
            LLMRequest(messages=[{"role": "user", "content": "hi"}], system="sys", schema=SCHEMA)
        )
    finally:
        await p.aclose()
    body = fake_llm.requests[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    # prompt_tokens = 140 includes the 40 cached ones: normalized input excludes them
    assert r.usage == Usage(input=100, output=20, cache_read=40)
    assert r.parsed is None and '"answer"' in r.text


async def test_server_without_json_schema_moves_to_json_object_at_once(fake_llm):
    fake_llm.push(
        Reply(status=400, text="response_format type json_schema is not supported"),
        Reply(text='{"answer": "x", "confidence": 0.5}'),
    )
    p = build_provider(load_settings(environ={"OPENAI_BASE_URL": fake_llm.openai_base_url}))
    try:
        r = await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
    finally:
        await p.aclose()
    second = fake_llm.requests[1].body
    assert second["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert "<schema>" in second["messages"][0]["content"]
    assert r.output_mode == "json_object" and r.attempts == 1


async def test_plain_bad_request_is_not_an_output_mode_rejection(fake_llm):
    fake_llm.push(Reply(status=400, text="messages[0].content: bad field"))
    p = build_provider(load_settings(environ={"OPENAI_BASE_URL": fake_llm.openai_base_url}))
    try:
        with pytest.raises(ProviderError) as err:
            await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
    finally:
        await p.aclose()
    assert err.value.kind == "bad_request" and "bad field" in str(err.value)
    assert len(fake_llm.requests) == 1


async def test_retry_honours_retry_after_then_gives_clear_error(fake_llm):
    fake_llm.push(
        Reply(status=429, headers={"retry-after": "0.2"}), Reply(json={"answer": "ok", "confidence": 0.5})
    )
    p = build_provider(load_settings(environ={"OPENAI_BASE_URL": fake_llm.openai_base_url}))
    try:
        r = await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
        assert r.attempts == 2
        gap = fake_llm.requests[1].received_at - fake_llm.requests[0].finished_at
        assert gap >= 0.18
        fake_llm.push(Reply(status=401, error_type="authentication_error"))
        with pytest.raises(ProviderError) as err:
            await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
    finally:
        await p.aclose()
    assert err.value.kind == "auth" and not err.value.retryable
    assert "check the API key" in str(err.value)
    assert len(fake_llm.requests) == 3  # a 401 is not retried


def test_price_table_prefix_and_override():
    t = PriceTable.load({"my-model": {"input": 1.0, "output": 2.0}})
    assert t.cost("gpt-4o-mini-2024-07-18", Usage(input=1_000_000))[0] == pytest.approx(0.15)
    assert t.cost("my-model", Usage(input=1_000_000, output=1_000_000))[0] == pytest.approx(3.0)
    assert t.cost("unknown-model", Usage(input=10)) == (0.0, False)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_malformed_body_and_dropped_connection_are_clear_errors(fake_llm, api):
    env = {
        "LLM_DEFAULT_PROVIDER": api,
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url,
    }
    settings = load_settings(environ=env)
    settings.llm.providers[api].max_retries = 1
    p = build_provider(settings)
    fake_llm.push(
        Reply(raw_body=b"{not json"),
        Reply(raw_body=b"{not json"),
        Reply(drop_connection=True),
        Reply(drop_connection=True),
    )
    try:
        with pytest.raises(ProviderError) as bad:
            await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
        with pytest.raises(ProviderError) as dropped:
            await p.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA))
    finally:
        await p.aclose()
    assert bad.value.kind == "bad_response" and "not valid" in str(bad.value)
    assert dropped.value.kind == "connection" and "connection failed" in str(dropped.value)
    assert len(fake_llm.requests) == 4  # each retried once
