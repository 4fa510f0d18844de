"""Model discovery: with only `OPENAI_BASE_URL` set (Ollama, llama.cpp, LM Studio, vLLM) and no
model configured, the server's `/models` says which model to use; OpenAI itself keeps its default.
Against the fake LLM server, which lists its models in the OpenAI wire format."""

from __future__ import annotations

import os

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.providers import LLMRequest
from reasonkit.providers.stack import build_one
from tests.providers.conftest import closed_port

pytestmark = pytest.mark.anyio


def model_list_requests(fake) -> int:
    return sum(1 for r in fake.model_listings if r.path == "/v1/models")


async def build(environ: dict[str, str], name: str = "openai", model: str | None = None):
    provider = build_one(load_settings(environ=environ), name, model, fallback=False, metrics=Metrics())
    await provider.aclose()
    return provider


async def test_the_one_model_a_server_lists_is_used(fake_llm):
    fake_llm.openai_models = ["qwen2.5:0.5b"]
    provider = await build({"OPENAI_BASE_URL": fake_llm.openai_base_url})
    assert provider.model == "qwen2.5:0.5b"
    assert model_list_requests(fake_llm) == 1


async def test_several_models_are_listed_with_how_to_pick_one(fake_llm):
    fake_llm.openai_models = ["llama3.1:8b", "qwen2.5:0.5b", "phi3:mini"]
    with pytest.raises(NoProviderConfigured) as info:
        await build({"OPENAI_BASE_URL": fake_llm.openai_base_url})
    text = str(info.value)
    assert all(m in text for m in fake_llm.openai_models)
    assert "LLM_DEFAULT_MODEL=llama3.1:8b" in text and "[llm.providers.openai] model" in text


async def test_a_proxy_that_has_the_default_model_uses_it(fake_llm):
    fake_llm.openai_models = ["gpt-4o", "gpt-4.1-mini", "claude-sonnet-4-6"]  # e.g. a LiteLLM proxy
    assert (await build({"OPENAI_BASE_URL": fake_llm.openai_base_url})).model == "gpt-4.1-mini"


async def test_a_server_with_no_models_is_a_clear_error(fake_llm):
    fake_llm.openai_models = []
    with pytest.raises(NoProviderConfigured) as info:
        await build({"OPENAI_BASE_URL": fake_llm.openai_base_url})
    assert "lists no models" in str(info.value) and "LLM_DEFAULT_MODEL" in str(info.value)


async def test_an_unreachable_server_is_said_and_its_calls_fail_clearly(log_lines):
    # A server started before Ollama must still start (and fall back): the build says why no
    # model was found, and each call fails with the connection error.
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings = load_settings(environ={"OPENAI_BASE_URL": url, "LLM_FALLBACK_PROVIDER": ""})
    provider = build_one(settings, "openai", None, fallback=False, metrics=Metrics())
    try:
        with pytest.raises(ProviderError) as err:
            await provider.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}]))
    finally:
        await provider.aclose()
    assert err.value.kind == "connection"
    said = "\n".join(log_lines)
    assert url in said and "could not list" in said and "LLM_DEFAULT_MODEL" in said


async def test_a_configured_model_asks_nothing(fake_llm):
    fake_llm.openai_models = ["a", "b"]
    url = fake_llm.openai_base_url
    assert (await build({"OPENAI_BASE_URL": url, "LLM_DEFAULT_MODEL": "b"})).model == "b"
    assert (await build({"OPENAI_BASE_URL": url}, model="a")).model == "a"
    assert model_list_requests(fake_llm) == 0


async def test_a_named_table_of_the_openai_kind_discovers_too(fake_llm, tmp_path):
    fake_llm.openai_models = ["llama3.2:1b"]
    config = tmp_path / "config.toml"
    config.write_text(f'[llm.providers.ollama]\nkind = "openai"\napi_base = "{fake_llm.openai_base_url}"\n')
    settings = load_settings(config, environ={})
    provider = build_one(settings, "ollama", None, fallback=False, metrics=Metrics())
    await provider.aclose()
    assert provider.model == "llama3.2:1b"


async def test_openai_itself_keeps_its_default_model():
    provider = await build({"OPENAI_API_KEY": "sk-test"})
    assert provider.model == "gpt-4.1-mini"
    explicit = await build({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "https://api.openai.com/v1"})
    assert explicit.model == "gpt-4.1-mini"


def test_rk_think_names_the_models_and_how_to_pick(fake_llm, tmp_path):
    from tests.cli.test_think import run_rk

    fake_llm.openai_models = ["llama3.1:8b", "qwen2.5:0.5b"]
    env = {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    r = run_rk("think", "--profile", "quick", "Is it?", env_extra=env)
    assert r.returncode == 2, r.stderr
    assert "llama3.1:8b, qwen2.5:0.5b" in r.stderr and "LLM_DEFAULT_MODEL=llama3.1:8b" in r.stderr
    assert "Traceback" not in r.stderr and fake_llm.requests == []
