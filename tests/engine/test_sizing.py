"""A step's max_tokens sized to what its schema can hold (engine/sizing.py): the rule, and the
calls a run makes (never above the step's own max_tokens)."""

from __future__ import annotations

import math

import pytest

from reasonkit.engine import Engine
from reasonkit.engine.sizing import (
    CHARS_PER_TOKEN,
    DEFAULT_ITEMS,
    MIN_TOKENS,
    SCALAR_TOKENS,
    SLACK,
    STRING_TOKENS,
    schema_tokens,
    sized_max_tokens,
)
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.fake import FakeProvider


def key(name: str) -> int:
    return math.ceil(len(name) / CHARS_PER_TOKEN) + 3


def test_each_part_of_a_schema_counts_by_its_bounds():
    assert schema_tokens({"type": "string", "maxLength": 90}) == 2 + 90 // CHARS_PER_TOKEN
    assert schema_tokens({"type": "string"}) == STRING_TOKENS
    assert schema_tokens({"type": "string", "enum": ["pass", "conditional pass"]}) == 2 + math.ceil(16 / 3)
    assert schema_tokens({"type": "number"}) == SCALAR_TOKENS
    three = {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 30}}
    assert schema_tokens(three) == 2 + 3 * (2 + 10 + 1)
    unbounded = {"type": "array", "items": {"type": "number"}}
    assert schema_tokens(unbounded) == 2 + DEFAULT_ITEMS * (SCALAR_TOKENS + 1)
    obj = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "maxLength": 60}, "confidence": {"type": "number"}},
    }
    assert schema_tokens(obj) == 2 + key("verdict") + key("confidence") + 22 + SCALAR_TOKENS


def test_the_step_max_tokens_is_a_ceiling_and_small_schemas_get_little():
    small = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    assert sized_max_tokens(small, 3000) == MIN_TOKENS
    big = {"type": "array", "maxItems": 20, "items": {"type": "string"}}
    assert sized_max_tokens(big, 3000) == 3000
    middle = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    }
    assert sized_max_tokens(middle, 3000) == math.ceil(schema_tokens(middle) * SLACK) < 600
    assert sized_max_tokens(None, 3000) == 3000


@pytest.mark.anyio
async def test_a_run_asks_each_step_for_what_its_schema_holds(tmp_path):
    (tmp_path / "tiny.toml").write_text(
        """
id = "tiny"
name = "Tiny"
description = "one short verdict"
result = { step = "verdict", field = "verdict" }
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "verdict"
kind = "decide"
max_tokens = 4000
prompt = "Decide: {{ inputs.query }} {{#if inputs.context}}{{ inputs.context }}{{/if}}"
[steps.output]
type = "object"
required = ["verdict", "confidence"]
[steps.output.properties.verdict]
type = "string"
enum = ["yes", "no"]
[steps.output.properties.confidence]
type = "number"
"""
    )
    provider = FakeProvider()
    registry = load_registry([tmp_path], include_builtin=False)
    assert not registry.problems, registry.problems
    engine = Engine(registry, provider, max_tokens=2048)
    r = await engine.run_protocol("tiny", {"query": "q"})
    assert r.status == "complete"
    assert [req.max_tokens for req in provider.requests] == [MIN_TOKENS]  # not 4000


def _unbounded(node: object, path: str) -> list[str]:
    """Free-text strings without maxLength and arrays without maxItems under `node`."""
    if not isinstance(node, dict):
        return []
    found = []
    if node.get("type") == "string" and not {"enum", "maxLength"} & set(node):
        found.append(path)
    if node.get("type") == "array":
        found += [] if "maxItems" in node else [path]
        found += _unbounded(node.get("items"), path + "[]")
    for name, sub in (node.get("properties") or {}).items():
        found += _unbounded(sub, f"{path}.{name}")
    return found


def test_built_in_steps_are_bounded_and_sized_below_their_old_fixed_max_tokens():
    # without bounds every built-in step asked for its full max_tokens (the sizing had no effect)
    registry = load_registry([])
    steps = [(proto, step) for proto in registry.protocols.values() for step in proto.steps]
    assert len(steps) >= 16
    for proto, step in steps:
        assert _unbounded(step.output, f"{proto.id}.{step.id}") == []
        assert step.max_tokens is not None
        assert sized_max_tokens(step.output, step.max_tokens) < step.max_tokens, f"{proto.id}.{step.id}"
