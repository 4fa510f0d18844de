"""Tests of the FakeLLM fixture itself, driven through the real anthropic / openai SDKs."""

# SDK response types are wide unions (content blocks, Optional usage...); these tests assert shapes
# at runtime.
# mypy: disable-error-code="union-attr,attr-defined,index,arg-type,operator,type-var,assignment"

from __future__ import annotations

import gc
import json
import socket
import threading
import time
from typing import Any

import anthropic
import anyio
import openai
import pytest

from .fake_llm import FakeLLM, RecordedRequest, Reply, fill_schema, schema_filler

try:
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

pytestmark = pytest.mark.anyio

MODEL_A = "claude-haiku-4-5"  # not in the anthropic SDK's DEPRECATED_MODELS (those warn -> error here)
MODEL_O = "gpt-4o-mini"

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}

NESTED_SCHEMA = {
    "type": "object",
    "$defs": {
        "Step": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 3},
                "claim": {"type": "string", "minLength": 12},
                "kind": {"enum": ["premise", "inference"]},
                "sources": {
                    "type": "array",
                    "items": {"type": "string", "format": "uri"},
                    "uniqueItems": True,
                },
                "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
                "parent": {"anyOf": [{"$ref": "#/$defs/Step"}, {"type": "null"}]},
            },
            "required": ["id", "claim", "kind"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "title": {"type": "string", "maxLength": 3},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "ok": {"type": "boolean"},
        "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 2, "maxItems": 4},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True},
        "empty": {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
        "meta": {
            "type": "object",
            "properties": {
                "count": {"type": ["integer", "null"], "maximum": 0},
                "when": {"type": "string", "format": "date-time"},
                "mode": {"const": "strict"},
            },
            "required": ["count"],
        },
        "score": {"allOf": [{"type": "integer"}, {"multipleOf": 5}]},
    },
    "required": ["title", "steps", "meta"],
}


def _anthropic(fake: FakeLLM) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="x", max_retries=0)


def _openai(fake: FakeLLM) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)


def _validate(instance: object, schema: dict) -> None:
    if jsonschema is not None:
        jsonschema.Draft202012Validator(schema).validate(instance)


async def _ask_anthropic_tool(client: anthropic.AsyncAnthropic, schema: dict = VERDICT_SCHEMA, **kw):
    return await client.messages.create(
        model=MODEL_A,
        max_tokens=512,
        system="You are terse.",
        messages=[{"role": "user", "content": "Is the sky blue? Answer via the tool."}],
        tools=[{"name": "verdict", "description": "Record the verdict", "input_schema": schema}],
        tool_choice={"type": "tool", "name": "verdict"},
        **kw,
    )


async def _ask_openai_schema(client: openai.AsyncOpenAI, schema: dict = VERDICT_SCHEMA):
    return await client.chat.completions.create(
        model=MODEL_O,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Is the sky blue?"},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": True},
        },
    )


# ---------------------------------------------------------------------------------------------------
# Anthropic
# ---------------------------------------------------------------------------------------------------


async def test_anthropic_forced_tool_round_trip(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(json={"answer": "yes", "confidence": 0.9}))
    async with _anthropic(fake_llm) as client:
        msg = await _ask_anthropic_tool(client)

    assert isinstance(msg, anthropic.types.Message)
    assert msg.stop_reason == "tool_use"
    assert msg.model == MODEL_A
    assert msg.id.startswith("msg_")
    block = msg.content[0]
    assert block.type == "tool_use" and block.name == "verdict" and block.id.startswith("toolu_")
    assert block.input == {"answer": "yes", "confidence": 0.9}

    (req,) = fake_llm.requests
    assert req.api == "anthropic" and req.path == "/v1/messages" and req.method == "POST"
    assert req.headers["authorization"] == "Bearer x"  # anthropic 2.x sends the key as a Bearer token
    assert "anthropic-version" in req.headers
    assert req.body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert req.forced_tool["name"] == "verdict"
    assert req.schema == VERDICT_SCHEMA
    assert req.received_at <= req.finished_at
    assert req.status == 200 and req.reply is not None
    assert fake_llm.pending == 0


async def test_anthropic_text_variants(fake_llm: FakeLLM) -> None:
    fake_llm.push(
        Reply(json={"a": 1}),  # no tools -> JSON as text
        Reply(text='Sure! ```json\n{"a": 1}\n```'),  # forced tool ignored -> text block
        Reply(text="Thinking...", json={"answer": "no", "confidence": 0.1}),  # prose + tool_use
    )
    async with _anthropic(fake_llm) as client:
        plain = await client.messages.create(
            model=MODEL_A, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        ignored = await _ask_anthropic_tool(client)
        both = await _ask_anthropic_tool(client)

    assert plain.stop_reason == "end_turn"
    assert [b.type for b in plain.content] == ["text"]
    assert json.loads(plain.content[0].text) == {"a": 1}

    assert ignored.stop_reason == "end_turn"
    assert [b.type for b in ignored.content] == ["text"]
    assert ignored.content[0].text.startswith("Sure! ```json")

    assert both.stop_reason == "tool_use"
    assert [b.type for b in both.content] == ["text", "tool_use"]
    assert both.content[1].input == {"answer": "no", "confidence": 0.1}


async def test_anthropic_structured_output_parse(fake_llm: FakeLLM) -> None:
    """messages.parse(output_format=Model) sends output_config.format; schema_filler fills it."""
    from pydantic import BaseModel

    class Verdict(BaseModel):
        answer: str
        confidence: float

    fake_llm.default = schema_filler
    async with _anthropic(fake_llm) as client:
        parsed = await client.messages.parse(
            model=MODEL_A, max_tokens=64, messages=[{"role": "user", "content": "q"}], output_format=Verdict
        )
    assert parsed.parsed_output == Verdict(answer="answer", confidence=0.8)
    assert fake_llm.requests[0].body["output_config"]["format"]["type"] == "json_schema"


async def test_anthropic_usage_fields(fake_llm: FakeLLM) -> None:
    fake_llm.push(
        Reply(
            json={"answer": "x", "confidence": 0.5},
            usage={"input": 11, "output": 7, "cache_read": 5, "cache_write": 3},
        ),
        Reply(text="abcdefghij" * 4),  # default usage
    )
    async with _anthropic(fake_llm) as client:
        msg = await _ask_anthropic_tool(client)
        plain = await client.messages.create(
            model=MODEL_A, max_tokens=64, messages=[{"role": "user", "content": "x" * 400}]
        )
    u = msg.usage
    assert (u.input_tokens, u.output_tokens) == (11, 7)
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (5, 3)
    assert u.cache_creation is not None and u.cache_creation.ephemeral_5m_input_tokens == 3
    assert plain.usage.input_tokens == 100
    assert plain.usage.output_tokens == 10
    assert plain.usage.cache_read_input_tokens == 0 and plain.usage.cache_creation_input_tokens == 0


async def test_anthropic_max_tokens_stop(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(text='{"answer": "trunc', stop="max_tokens"))
    async with _anthropic(fake_llm) as client:
        msg = await client.messages.create(
            model=MODEL_A, max_tokens=5, messages=[{"role": "user", "content": "q"}]
        )
    assert msg.stop_reason == "max_tokens"
    assert msg.content[0].text == '{"answer": "trunc'


@pytest.mark.parametrize(
    ("status", "error_type", "exc"),
    [
        (429, None, anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.OverloadedError),
        (400, None, anthropic.BadRequestError),
        (500, None, anthropic.InternalServerError),
    ],
)
async def test_anthropic_errors(fake_llm: FakeLLM, status: int, error_type: str | None, exc: type) -> None:
    fake_llm.push(Reply(status=status, error_type=error_type, headers={"retry-after": "1"}))
    async with _anthropic(fake_llm) as client:
        with pytest.raises(exc) as info:
            await _ask_anthropic_tool(client)
    err = info.value
    assert err.status_code == status
    assert err.response.headers["retry-after"] == "1"
    assert err.request_id and err.request_id.startswith("req_")
    assert err.body["type"] == "error"
    expected_type = (
        error_type or {429: "rate_limit_error", 400: "invalid_request_error", 500: "api_error"}[status]
    )
    assert err.body["error"]["type"] == expected_type
    assert err.type == expected_type
    assert err.api_message


async def test_anthropic_validation_error_does_not_consume_queue(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(json={"x": 1}))
    async with _anthropic(fake_llm) as client:
        with pytest.raises(anthropic.BadRequestError, match="not found in tools"):
            await client.messages.create(
                model=MODEL_A,
                max_tokens=5,
                messages=[{"role": "user", "content": "q"}],
                tools=[{"name": "a", "input_schema": {"type": "object"}}],
                tool_choice={"type": "tool", "name": "b"},
            )
    assert fake_llm.pending == 1


# ---------------------------------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------------------------------


async def test_openai_json_schema_round_trip(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(json={"answer": "yes", "confidence": 0.9}))
    async with _openai(fake_llm) as client:
        resp = await _ask_openai_schema(client)

    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == MODEL_O
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert json.loads(choice.message.content) == {"answer": "yes", "confidence": 0.9}

    (req,) = fake_llm.requests
    assert req.api == "openai" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer x"
    assert req.schema == VERDICT_SCHEMA


async def test_openai_parse_helper_and_plain_path(fake_llm: FakeLLM) -> None:
    from pydantic import BaseModel

    class Verdict(BaseModel):
        answer: str
        confidence: float

    fake_llm.default = schema_filler
    async with _openai(fake_llm) as client:
        parsed = await client.chat.completions.parse(
            model=MODEL_O, messages=[{"role": "user", "content": "q"}], response_format=Verdict
        )
    assert parsed.choices[0].message.parsed == Verdict(answer="answer", confidence=0.8)

    # also reachable without the /v1 prefix
    async with openai.AsyncOpenAI(base_url=fake_llm.base_url, api_key="x", max_retries=0) as client:
        resp = await client.chat.completions.create(
            model=MODEL_O, messages=[{"role": "user", "content": "q"}]
        )
    assert json.loads(resp.choices[0].message.content) == {"answer": "ok", "confidence": 0.8}
    assert fake_llm.requests[-1].path == "/chat/completions"


async def test_openai_forced_function_returns_tool_call(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(json={"answer": "y", "confidence": 0.3}))
    async with _openai(fake_llm) as client:
        resp = await client.chat.completions.create(
            model=MODEL_O,
            messages=[{"role": "user", "content": "q"}],
            tools=[{"type": "function", "function": {"name": "verdict", "parameters": VERDICT_SCHEMA}}],
            tool_choice={"type": "function", "function": {"name": "verdict"}},
        )
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "verdict"
    assert json.loads(call.function.arguments) == {"answer": "y", "confidence": 0.3}
    assert resp.choices[0].finish_reason == "stop"


async def test_openai_usage_fields(fake_llm: FakeLLM) -> None:
    fake_llm.push(
        Reply(json={"answer": "x", "confidence": 0.5}, usage={"input": 11, "output": 7, "cache_read": 5}),
        Reply(text="abcdefghij" * 4),
    )
    async with _openai(fake_llm) as client:
        resp = await _ask_openai_schema(client)
        plain = await client.chat.completions.create(
            model=MODEL_O, messages=[{"role": "user", "content": "x" * 400}]
        )
    u = resp.usage
    assert u is not None
    assert u.prompt_tokens == 16  # cached tokens are included in prompt_tokens
    assert u.completion_tokens == 7
    assert u.total_tokens == 23
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 5
    assert plain.usage is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (100, 10)
    assert plain.usage.prompt_tokens_details.cached_tokens == 0


async def test_openai_max_tokens_stop(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(text='{"answer": "tr', stop="max_tokens"))
    async with _openai(fake_llm) as client:
        resp = await client.chat.completions.create(
            model=MODEL_O, messages=[{"role": "user", "content": "q"}]
        )
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message.content == '{"answer": "tr'


@pytest.mark.parametrize(
    ("status", "exc", "etype", "code"),
    [
        (429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
        (400, openai.BadRequestError, "invalid_request_error", None),
        (503, openai.InternalServerError, "server_error", None),
    ],
)
async def test_openai_errors(fake_llm: FakeLLM, status: int, exc: type, etype: str, code: str | None) -> None:
    fake_llm.push(Reply(status=status, headers={"Retry-After": "1"}, text="slow down"))
    async with _openai(fake_llm) as client:
        with pytest.raises(exc) as info:
            await _ask_openai_schema(client)
    err = info.value
    assert err.status_code == status
    assert err.response.headers["retry-after"] == "1"
    assert err.request_id and err.request_id.startswith("req_")
    assert err.body == {"message": "slow down", "type": etype, "param": None, "code": code}
    assert (err.type, err.code) == (etype, code)


# ---------------------------------------------------------------------------------------------------
# Transport-level behaviour
# ---------------------------------------------------------------------------------------------------


async def test_drop_connection_raises_connection_error(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(drop_connection=True), Reply(drop_connection=True), Reply(json={"ok": True}))
    async with _anthropic(fake_llm) as a, _openai(fake_llm) as o:
        with pytest.raises(anthropic.APIConnectionError):
            await _ask_anthropic_tool(a)
        with pytest.raises(openai.APIConnectionError):
            await _ask_openai_schema(o)
        # the server keeps serving afterwards
        resp = await _ask_openai_schema(o)
    assert json.loads(resp.choices[0].message.content) == {"ok": True}
    assert [r.status for r in fake_llm.requests] == [None, None, 200]


async def test_malformed_raw_body(fake_llm: FakeLLM) -> None:
    """Documents SDK behaviour callers must handle (both SDKs, non-strict response validation):
    a 200 with broken JSON raises a bare json.JSONDecodeError (NOT an SDK APIError subclass), and a
    well-formed body missing required fields is NOT rejected: fields simply come back as None."""
    fake_llm.push(
        Reply(raw_body=b'{"id": "msg_1", "content": ['),
        Reply(raw_body=b'{"id": "chatcmpl-1", "choices": ['),
        Reply(raw_body=b'{"id": "msg_1"}'),
        Reply(raw_body=b"<html>bad gateway</html>", status=502, headers={"content-type": "text/html"}),
    )
    async with _anthropic(fake_llm) as a, _openai(fake_llm) as o:
        with pytest.raises(json.JSONDecodeError):
            await a.messages.create(model=MODEL_A, max_tokens=5, messages=[{"role": "user", "content": "q"}])
        with pytest.raises(json.JSONDecodeError):
            await o.chat.completions.create(model=MODEL_O, messages=[{"role": "user", "content": "q"}])
        partial = await a.messages.create(
            model=MODEL_A, max_tokens=5, messages=[{"role": "user", "content": "q"}]
        )
        assert partial.id == "msg_1" and partial.content is None and partial.usage is None
        with pytest.raises(openai.InternalServerError) as info:
            await o.chat.completions.create(model=MODEL_O, messages=[{"role": "user", "content": "q"}])
    assert info.value.status_code == 502 and info.value.body == "<html>bad gateway</html>"


async def test_no_scripted_reply_is_clear_500(fake_llm: FakeLLM) -> None:
    async with _openai(fake_llm) as client:
        with pytest.raises(openai.InternalServerError, match="FakeLLM: no scripted reply"):
            await _ask_openai_schema(client)


async def test_default_handler_sync_and_async(fake_llm: FakeLLM) -> None:
    seen: list[RecordedRequest] = []

    async def handler(req: RecordedRequest) -> Reply:
        seen.append(req)
        return Reply(json={"n": len(seen)})

    fake_llm.default = handler
    fake_llm.push(Reply(json={"n": 0}))
    async with _openai(fake_llm) as client:
        out = [
            json.loads((await _ask_openai_schema(client)).choices[0].message.content)["n"] for _ in range(3)
        ]
    assert out == [0, 1, 2]
    assert seen == fake_llm.requests[1:]


async def test_concurrent_requests_overlap(fake_llm: FakeLLM) -> None:
    fake_llm.push(*[Reply(json={"i": i}, delay=0.3) for i in range(3)])
    results: list[dict] = []
    async with _anthropic(fake_llm) as client:

        async def one() -> None:
            msg = await client.messages.create(
                model=MODEL_A, max_tokens=5, messages=[{"role": "user", "content": "q"}]
            )
            results.append(json.loads(msg.content[0].text))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
    # Overlap is shown by order, not by wall time: all three were in flight at once (every request
    # arrived before any finished).
    assert fake_llm.max_concurrent == 3
    assert sorted(r["i"] for r in results) == [0, 1, 2]
    reqs = fake_llm.requests
    assert max(r.received_at for r in reqs) < min(r.finished_at for r in reqs)


async def test_models_endpoint_both_sdks(fake_llm: FakeLLM) -> None:
    async with _anthropic(fake_llm) as a, _openai(fake_llm) as o:
        a_models = [m.id async for m in a.models.list()]
        o_models = [m.id async for m in o.models.list()]
    assert a_models == fake_llm.anthropic_models
    assert o_models == fake_llm.openai_models
    assert [r.api for r in fake_llm.model_listings] == ["anthropic", "openai"]
    assert fake_llm.requests == [] and fake_llm.pending == 0


async def test_unknown_path_is_404(fake_llm: FakeLLM) -> None:
    async with _openai(fake_llm) as client:
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="x", input="q")


def test_clear_resets_state(fake_llm: FakeLLM) -> None:
    fake_llm.push(Reply(json={}))
    fake_llm.requests.append(RecordedRequest(api="openai", path="/x", headers={}, body={}, received_at=0.0))
    fake_llm.max_concurrent = 5
    fake_llm.clear()
    assert (fake_llm.pending, fake_llm.requests, fake_llm.max_concurrent) == (0, [], 0)


def test_reply_validation() -> None:
    with pytest.raises(ValueError):
        Reply(stop="length")
    with pytest.raises(ValueError):
        Reply(usage={"prompt": 1})
    assert Reply(headers={"Retry-After": "2"}).headers == {"retry-after": "2"}


# ---------------------------------------------------------------------------------------------------
# schema_filler
# ---------------------------------------------------------------------------------------------------


def test_schema_filler_nested_schema_is_valid() -> None:
    value = fill_schema(NESTED_SCHEMA)
    _validate(value, NESTED_SCHEMA)
    # spot checks independent of jsonschema
    assert value["confidence"] == 0.8
    assert value["ok"] is True
    assert len(value["title"]) <= 3
    assert 2 <= len(value["steps"]) <= 4
    step = value["steps"][0]
    assert step["id"] >= 3 and len(step["claim"]) >= 12 and step["kind"] == "premise"
    assert 0 < step["weight"] <= 0.5
    assert len(set(value["tags"])) == len(value["tags"]) == 3
    assert value["empty"] == []
    assert value["meta"]["count"] <= 0 and value["meta"]["mode"] == "strict"
    assert value["score"] % 5 == 0
    assert "claim" in step["claim"]


async def test_schema_filler_through_both_sdks(fake_llm: FakeLLM) -> None:
    fake_llm.default = schema_filler
    async with _anthropic(fake_llm) as a, _openai(fake_llm) as o:
        msg = await _ask_anthropic_tool(a, schema=NESTED_SCHEMA)
        resp = await _ask_openai_schema(o, schema=NESTED_SCHEMA)
        tagged = await o.chat.completions.create(
            model=MODEL_O,
            messages=[
                {
                    "role": "user",
                    "content": "Reply as JSON.\n<schema>"
                    + json.dumps({"type": "object", "properties": {"verdict": {"type": "string"}}})
                    + "</schema>",
                }
            ],
        )
    _validate(msg.content[0].input, NESTED_SCHEMA)
    _validate(json.loads(resp.choices[0].message.content), NESTED_SCHEMA)
    assert json.loads(tagged.choices[0].message.content) == {"verdict": "verdict"}


def test_schema_filler_fallback() -> None:
    req = RecordedRequest(
        api="anthropic",
        path="/v1/messages",
        headers={},
        body={"messages": [{"role": "user", "content": "hi"}]},
        received_at=0.0,
    )
    assert schema_filler(req).json == {"answer": "ok", "confidence": 0.8}


# ---------------------------------------------------------------------------------------------------
# Lifecycle and network guard
# ---------------------------------------------------------------------------------------------------


def test_stop_really_shuts_down() -> None:
    before = set(threading.enumerate())
    fake = FakeLLM().start()
    port = fake.port
    assert fake.base_url == f"http://127.0.0.1:{port}"
    assert fake.anthropic_base_url == fake.base_url
    assert fake.openai_base_url == fake.base_url + "/v1"
    fake.stop()
    fake.stop()  # idempotent
    gc.collect()
    assert set(threading.enumerate()) <= before
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.base_url


async def test_stop_with_request_in_flight_and_open_client() -> None:
    fake = FakeLLM().start()
    fake.push(Reply(json={}, delay=30))
    client = _openai(fake)
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    with pytest.raises(openai.APIConnectionError):
                        await _ask_openai_schema(client)

                tg.start_soon(call)
                while not fake.requests:  # noqa: ASYNC110 - populated by the server thread
                    await anyio.sleep(0.01)
                t0 = time.monotonic()
                await anyio.to_thread.run_sync(fake.stop)
                assert time.monotonic() - t0 < 5
    finally:
        await client.close()


async def test_real_hosts_are_blocked() -> None:
    for host in ("api.anthropic.com", "api.openai.com", "openrouter.ai"):
        with pytest.raises(RuntimeError, match=f"network blocked in tests: {host}"):
            socket.create_connection((host, 443), timeout=1)
    with socket.socket() as s, pytest.raises(RuntimeError, match="network blocked in tests: 1.1.1.1"):
        s.connect(("1.1.1.1", 443))

    # and through a real SDK client pointed at the real host
    async with openai.AsyncOpenAI(api_key="x", max_retries=0) as client:
        with pytest.raises(Exception) as info:
            await client.chat.completions.create(model=MODEL_O, messages=[{"role": "user", "content": "q"}])
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any("network blocked in tests: api.openai.com" in str(e) for e in chain), chain


# ---------------------------------------------------------------------------------------------------
# Server personalities
# ---------------------------------------------------------------------------------------------------

PERSONA_SCHEMA = {"type": "object", "required": ["verdict"], "properties": {"verdict": {"type": "string"}}}


async def _chat(fake: FakeLLM, model: str = MODEL_O, **kw: Any) -> openai.types.chat.ChatCompletion:
    async with _openai(fake) as client:
        return await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20, **kw
        )


async def test_llama_cpp_python_rejects_json_schema_like_the_real_server(fake_llm: FakeLLM) -> None:
    from .fake_llm import schema_or_prose

    fake_llm.personality = "llama_cpp_python"
    fake_llm.default = schema_or_prose
    fake_llm.push(Reply(json={"verdict": "scripted"}))
    fmt = {"type": "json_schema", "json_schema": {"name": "v", "schema": PERSONA_SCHEMA}}
    with pytest.raises(openai.InternalServerError) as err:
        await _chat(fake_llm, response_format=fmt)
    assert "Input should be 'text' or 'json_object'" in err.value.body["message"]  # type: ignore[index]
    assert err.value.body["type"] == "internal_server_error"  # type: ignore[index]
    assert fake_llm.pending == 1  # a rejection consumes no scripted reply
    fake_llm.clear()
    resp = await _chat(fake_llm, response_format={"type": "json_object", "schema": PERSONA_SCHEMA})
    assert json.loads(resp.choices[0].message.content or "") == {"verdict": "verdict"}


async def test_gateway_drops_response_format_and_the_model_answers_prose(fake_llm: FakeLLM) -> None:
    from .fake_llm import schema_or_prose

    fake_llm.personality = "strips_response_format"
    fake_llm.default = schema_or_prose
    fmt = {"type": "json_schema", "json_schema": {"name": "v", "schema": PERSONA_SCHEMA}}
    resp = await _chat(fake_llm, response_format=fmt)
    assert "{" not in (resp.choices[0].message.content or "")
    assert fake_llm.requests[0].ignored == frozenset({"response_format"})
    assert fake_llm.requests[0].body["response_format"] == fmt  # recorded as sent


async def test_no_tools_server_refuses_tools_with_a_fastapi_422(fake_llm: FakeLLM) -> None:
    fake_llm.personality = "no_tools"
    tool = {"type": "function", "function": {"name": "v", "parameters": PERSONA_SCHEMA}}
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await _chat(fake_llm, tools=[tool], tool_choice={"type": "function", "function": {"name": "v"}})
    assert err.value.body == {
        "detail": [
            {"type": "extra_forbidden", "loc": ["body", "tools"], "msg": "Extra inputs are not permitted"}
        ]
    }


async def test_context_window_and_unknown_model_bodies(fake_llm: FakeLLM) -> None:
    fake_llm.default = schema_filler
    fake_llm.personality = "vllm"
    fake_llm.context_window = 10
    with pytest.raises(openai.BadRequestError) as overflow:
        await _chat(fake_llm)
    assert "maximum context length is 10 tokens" in str(overflow.value.body)
    fake_llm.context_window = None
    fake_llm.personality = "ollama"
    with pytest.raises(openai.NotFoundError) as missing:
        await _chat(fake_llm, model="llama9")
    assert 'model "llama9" not found, try pulling it first' in str(missing.value)
    fake_llm.personality = "llama_server"  # serves its one model under any name
    resp = await _chat(fake_llm, model="llama9")
    assert resp.choices[0].message.content


def test_every_personality_is_complete() -> None:
    from .fake_llm import PERSONALITIES

    for persona in PERSONALITIES.values():
        verdicts = {persona.json_schema, persona.json_object, persona.tools}
        assert verdicts <= {"ok", "reject", "ignore"}
        assert ("reject" in verdicts) == (persona.reject is not None), persona.name
