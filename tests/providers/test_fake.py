"""reasonkit.providers.fake: fill_schema fills every built-in step schema validly; FakeProvider answers
deterministically, counts usage from text lengths, records requests and honours its latency."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from jsonschema import Draft202012Validator

from reasonkit.engine import Engine
from reasonkit.errors import ProviderError, ReasonKitError
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import LLMRequest, Usage
from reasonkit.providers.fake import FakeProvider
from reasonkit.providers.schema_fill import fill_schema

pytestmark = pytest.mark.anyio

REGISTRY = load_registry([])
STEPS = [(pid, step) for pid, proto in sorted(REGISTRY.protocols.items()) for step in proto.steps]


def _errors(value: object, schema: dict) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(value)]


def test_registry_loads_built_in_protocols():
    assert not REGISTRY.problems
    assert len(REGISTRY.protocols) >= 5 and len(STEPS) >= 10


@pytest.mark.parametrize(("pid", "step"), STEPS, ids=[f"{pid}.{step.id}" for pid, step in STEPS])
@pytest.mark.parametrize(
    "options", [{}, {"items": 3, "confidence": 0.35, "tag": " #7"}], ids=["default", "options"]
)
def test_fills_every_built_in_step_schema_validly(pid, step, options):
    value = fill_schema(step.output, **options)
    assert isinstance(value, dict)
    assert _errors(value, step.output) == []
    assert set(step.output.get("required", [])) <= set(value)
    if "confidence" in value:
        assert value["confidence"] == options.get("confidence", 0.8)


SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence", "claims"],
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "claims": {"type": "array", "minItems": 2, "maxItems": 4, "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        "score": {"type": "integer", "minimum": 5, "multipleOf": 5},
        "link": {"type": "string", "format": "uri"},
    },
}


def test_fill_schema_default_shape():
    assert fill_schema(SCHEMA) == {
        "answer": "answer",
        "confidence": 0.8,
        "claims": ["claims", "claims-2"],
        "tags": ["a"],
        "score": 5,
        "link": "https://example.com/link",
    }


def test_fill_schema_item_count_stays_within_min_and_max_items():
    assert len(fill_schema(SCHEMA, items=3)["claims"]) == 3
    assert len(fill_schema(SCHEMA, items=9)["claims"]) == 4
    assert len(fill_schema(SCHEMA, items=0)["claims"]) == 2
    assert fill_schema(SCHEMA, items=0)["tags"] == []


def test_fill_schema_confidence_is_kept_within_bounds_and_tag_marks_plain_strings():
    assert fill_schema(SCHEMA, confidence=0.1)["confidence"] == 0.1
    assert fill_schema(SCHEMA, confidence=7.0)["confidence"] == 1
    tagged = fill_schema(SCHEMA, tag=" #3")
    assert tagged["answer"] == "answer #3" and tagged["claims"] == ["claims #3", "claims-2 #3"]
    assert tagged["tags"] == ["a"] and tagged["link"] == "https://example.com/link"  # enum, format: as is


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "object", "properties": {"x": {"type": "widget"}}}, "unsupported type 'widget'"),
        ({"$ref": "https://example.com/s.json"}, "only local \\$ref"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        (
            {
                "$defs": {
                    "n": {"type": "object", "required": ["n"], "properties": {"n": {"$ref": "#/$defs/n"}}}
                },
                "$ref": "#/$defs/n",
            },
            "recursion too deep",
        ),
    ],
)
def test_unfillable_schema_is_a_provider_error(schema, match):
    with pytest.raises(ProviderError, match=match) as info:
        fill_schema(schema)
    assert isinstance(info.value, ReasonKitError) and info.value.kind == "bad_request"


def _request(**kw) -> LLMRequest:
    base = {"messages": [{"role": "user", "content": "q" * 40}], "system": "s" * 8, "schema": SCHEMA}
    return LLMRequest(**{**base, **kw})


async def test_complete_returns_the_filled_object_with_usage_from_text_lengths():
    provider = FakeProvider(model="fake-1")
    resp = await provider.complete(_request())
    assert resp.parsed == fill_schema(SCHEMA) == json.loads(resp.text)
    assert resp.stop_reason == "end" and resp.provider == "fake" and resp.model == "fake-1"
    assert resp.cost_usd == 0.0 and resp.price_known and not resp.cached
    assert resp.usage == Usage(input=12, output=-(-len(resp.text) // 4))  # 48 prompt chars / 4
    assert (await provider.complete(_request(model="other"))).model == "other"


async def test_fixed_usage_and_records_requests():
    provider = FakeProvider(usage=Usage(1800, 600))
    first, second = _request(), _request(schema=None)
    r1 = await provider.complete(first)
    r2 = await provider.complete(second)
    assert r1.usage == r2.usage == Usage(1800, 600) and r1.usage is not r2.usage
    assert r2.parsed == {"answer": "ok", "confidence": 0.8}
    assert provider.requests == [first, second] and provider.calls == 2
    provider.reset()
    assert provider.requests == [] and provider.calls == 0
    unrecorded = FakeProvider(record=False)
    await unrecorded.complete(first)
    assert unrecorded.requests == [] and unrecorded.calls == 1


async def test_each_reply_is_a_fresh_object_and_distinct_numbers_the_calls():
    provider = FakeProvider()
    r1 = await provider.complete(_request())
    r1.parsed["claims"].append("changed")  # type: ignore[index]
    r2 = await provider.complete(_request())
    assert r2.parsed == fill_schema(SCHEMA) and r2.text == r1.text
    distinct = FakeProvider(distinct=True)
    answers = [(await distinct.complete(_request())).parsed["answer"] for _ in range(2)]  # type: ignore[index]
    assert answers == ["answer #1", "answer #2"]


def test_zero_latency_completes_without_awaiting():
    coro = FakeProvider().complete(_request())
    with pytest.raises(StopIteration) as info:
        coro.send(None)  # finishes on the first step: nothing was awaited
    assert info.value.value.parsed == fill_schema(SCHEMA)


async def test_latency_is_slept_and_concurrent_calls_overlap():
    provider = FakeProvider(latency=0.05)
    results = []

    async def call() -> None:
        results.append(await provider.complete(_request()))

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(call)
    wall = time.perf_counter() - t0
    assert 0.05 <= wall < 0.5
    assert provider.peak_in_flight == 4 and provider.in_flight == 0
    assert all(r.latency_ms == 50.0 for r in results)


@pytest.mark.parametrize("pid", sorted(REGISTRY.protocols))
async def test_engine_runs_every_built_in_protocol_to_completion(pid):
    provider = FakeProvider()
    proto = REGISTRY.protocol(pid)
    question = "Should we rewrite the billing service?"
    inputs = {name: question for name, spec in proto.inputs.items() if spec.required}
    result = await Engine(REGISTRY, provider).run_protocol(pid, inputs)
    assert result.status == "complete", result
    assert provider.calls == len(provider.requests) >= len(proto.steps)
