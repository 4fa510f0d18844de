"""Streamed OpenAI-compatible replies (providers/openai_stream.py), through the real SDK against the
fake server's server-sent events: a request with `on_text` streams, its pieces make up the reply,
a looping reply is cut with `stop_reason="repetition"`, and tool-call arguments and usage come
through as in a plain reply."""

from __future__ import annotations

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import ProviderError
from reasonkit.providers import LLMRequest, PriceTable, Usage
from reasonkit.providers.openai_compat import OpenAIProvider, on_local_network
from reasonkit.providers.openai_stream import INTERRUPTING
from reasonkit.providers.stack import build_provider
from tests.fakes.fake_llm import Reply

pytestmark = pytest.mark.anyio
SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
}


async def complete(fake_llm, request: LLMRequest, **env: str):
    provider = build_provider(
        load_settings(
            environ={"OPENAI_BASE_URL": fake_llm.openai_base_url, "LLM_DEFAULT_MODEL": "gpt-4o-mini", **env}
        )
    )
    try:
        return await provider.complete(request)
    finally:
        await provider.aclose()


def request(pieces: list[str] | None) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "user", "content": "hi"}],
        schema=SCHEMA,
        on_text=None if pieces is None else pieces.append,
    )


async def test_a_watched_request_streams_and_its_pieces_make_the_reply(fake_llm):
    fake_llm.push(
        Reply(json={"answer": "a short answer", "confidence": 0.7}, usage={"input": 30, "output": 9})
    )
    pieces: list[str] = []
    response = await complete(fake_llm, request(pieces))
    body = fake_llm.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(pieces) > 3 and "".join(pieces) == response.text
    assert '"a short answer"' in response.text and response.stop_reason == "end"
    assert response.usage == Usage(input=30, output=9)


async def test_a_server_on_this_machine_streams_even_unwatched(fake_llm):
    fake_llm.push(Reply(json={"answer": "x", "confidence": 0.7}))
    response = await complete(fake_llm, request(None))
    assert fake_llm.requests[0].body["stream"] is True and '"x"' in response.text


@pytest.mark.parametrize(
    "url, local",
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://192.168.1.20:1234/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.openai.com/v1", False),
        ("https://openrouter.ai/api/v1", False),
        ("http://8.8.8.8/v1", False),
    ],
)
def test_which_servers_stream_every_reply(url, local):
    assert on_local_network(url) is local


async def test_a_streamed_200_without_events_is_a_bad_response(fake_llm):
    fake_llm.push(Reply(raw_body=b"{not json"))
    settings = load_settings(environ={"OPENAI_BASE_URL": fake_llm.openai_base_url})
    settings.llm.providers["openai"].max_retries = 0
    provider = build_provider(settings)
    try:
        with pytest.raises(ProviderError) as bad:
            await provider.complete(request([]))
    finally:
        await provider.aclose()
    assert bad.value.kind == "bad_response" and "not valid" in str(bad.value)


async def test_a_looping_reply_is_cut_while_it_streams(fake_llm):
    loop = "the team should split the service into smaller services. " * 200
    fake_llm.push(Reply(text='{"answer": "' + loop + '", "confidence": 0.5}'))
    pieces: list[str] = []
    response = await complete(fake_llm, request(pieces))
    assert response.stop_reason == "repetition"
    assert len(response.text) < 600  # cut after a few repeats, not 11,000 characters
    assert response.usage.output == len(pieces)  # no usage chunk came: one token per piece


async def test_a_max_tokens_cut_reads_as_such(fake_llm):
    fake_llm.push(Reply(text='{"answer": "unfinished', stop="max_tokens"))
    response = await complete(fake_llm, request([]))
    assert response.stop_reason == "max_tokens" and response.text == '{"answer": "unfinished'


async def test_tool_call_arguments_stream_into_the_parsed_object(fake_llm):
    fake_llm.push(Reply(json={"answer": "via a tool", "confidence": 0.6}))
    pieces: list[str] = []
    provider = OpenAIProvider(
        "openai",
        "gpt-4o-mini",
        PriceTable.load(),
        api_key=None,
        base_url=fake_llm.openai_base_url,
        timeout=10,
        output_mode="tools",
    )
    try:
        response = await provider.complete(request(pieces))
    finally:
        await provider.aclose()
    assert fake_llm.requests[0].body["tool_choice"]["function"]["name"] == "respond"
    assert response.parsed == {"answer": "via a tool", "confidence": 0.6}
    assert "".join(pieces) == response.text


async def test_a_server_that_ends_streams_early_is_asked_again_without_streaming(fake_llm, log_lines):
    fake_llm.push(
        Reply(json={"answer": "first, cut off", "confidence": 0.7}, interrupted=True),
        Reply(json={"answer": "asked again", "confidence": 0.7}),
        Reply(json={"answer": "later call", "confidence": 0.7}),
    )
    try:
        first = await complete(fake_llm, request([]))
        later = await complete(fake_llm, request([]))
    finally:
        INTERRUPTING.discard(fake_llm.openai_base_url)
    assert [r.body.get("stream", False) for r in fake_llm.requests] == [True, False, False]
    assert '"asked again"' in first.text and first.stop_reason == "end"
    assert '"later call"' in later.text
    assert any("--interrupt_requests false" in line for line in log_lines)
