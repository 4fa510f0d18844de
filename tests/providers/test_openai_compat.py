"""A serial OpenAI-compatible server (llama-cpp-python's `python -m llama_cpp.server`, which answers
one request at a time) gets one call at a time: a run's parallel calls no longer queue on the server
and time out there. Against the fake LLM server in llama-cpp-python's personality, which lists its
models with `owned_by: "me"` as the real one does."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from reasonkit.config import load_settings
from reasonkit.observability.metrics import Metrics
from reasonkit.providers import LLMRequest
from reasonkit.providers.stack import build_one
from tests.fakes.fake_llm import Reply

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


async def six_calls_at_once(fake_llm) -> None:
    fake_llm.default = lambda req: Reply(json={"answer": "ok"}, delay=0.2)
    environ = {"OPENAI_BASE_URL": fake_llm.openai_base_url, "LLM_DEFAULT_MODEL": "smollm2"}
    provider = build_one(load_settings(environ=environ), "openai", None, fallback=False, metrics=Metrics())
    request = LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=SCHEMA, max_tokens=64)
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(provider.complete, request)
    finally:
        await provider.aclose()


async def test_a_llama_cpp_python_server_gets_one_call_at_a_time(fake_llm, log_lines):
    fake_llm.personality = "llama_cpp_python"
    await six_calls_at_once(fake_llm)
    calls = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    assert len(calls) >= 6 and fake_llm.max_concurrent == 1
    assert sum(1 for r in fake_llm.model_listings if r.path == "/v1/models") == 1  # asked once
    assert any("one request at a time" in line for line in log_lines)


async def test_other_servers_keep_their_parallel_calls(fake_llm):
    fake_llm.personality = "llama_server"
    await six_calls_at_once(fake_llm)
    assert fake_llm.max_concurrent > 1


async def test_a_server_on_this_machine_gets_the_schema_without_string_lengths(fake_llm):
    """llama-cpp-python turns the schema into a grammar that nests one rule per character a string
    may hold: a 4,200-character `maxLength` (GigaThink's answer) gave "failed to parse grammar" and
    the server died. Lengths only size the call (engine/sizing.py), so they stay off the wire there."""
    fake_llm.personality = "llama_cpp_python"
    fake_llm.default = lambda req: Reply(json={"answer": "ok"})
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["answer", "items"],
        "properties": {
            "answer": {"type": "string", "maxLength": 4200},
            "items": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 200}},
        },
    }
    environ = {"OPENAI_BASE_URL": fake_llm.openai_base_url, "LLM_DEFAULT_MODEL": "smollm2"}
    provider = build_one(load_settings(environ=environ), "openai", None, fallback=False, metrics=Metrics())
    try:
        await provider.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}], schema=schema))
    finally:
        await provider.aclose()
    sent = fake_llm.requests[-1].body["response_format"]["schema"]
    assert "maxLength" not in str(sent) and sent["properties"]["items"]["maxItems"] == 4
    assert schema["properties"]["answer"]["maxLength"] == 4200  # the request's own is untouched
