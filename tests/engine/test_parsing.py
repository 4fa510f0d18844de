import json
from typing import Any

import pytest

from reasonkit.engine.parsing import (
    coerce_numbers,
    dedupe_items,
    dedupe_lists,
    extract_object,
    items_field,
    normalize_confidence,
    read_confidence,
    relaxed_schema,
    schema_errors,
)

SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number"},
        "items": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.mark.parametrize(
    "text, obj, note",
    [
        ('{"answer": "a", "confidence": 0.5}', {"answer": "a", "confidence": 0.5}, None),
        ('```json\n{"answer": "a"}\n```', {"answer": "a"}, "code fence"),
        (
            'Here you go: {"answer": "x {y}", "confidence": 1} hope it helps',
            {"answer": "x {y}", "confidence": 1},
            "prose",
        ),
        ('{"answer": "a", "items": ["one", "tw', {"answer": "a", "items": ["one"]}, "cut off"),
        (
            '{"answer": "a", "items": ["one", "two"], "confidence": 0.',
            {"answer": "a", "items": ["one", "two"]},
            "cut off",
        ),
        ("no json here", None, "no JSON object"),
        ("", None, "empty"),
    ],
)
def test_extract_object(text, obj, note):
    ex = extract_object(text)
    assert ex.obj == obj
    if note:
        assert any(note in n for n in ex.notes)


def test_coercion_and_schema_errors():
    obj = {"answer": "a", "confidence": "85%"}
    assert coerce_numbers(obj, SCHEMA) == ["'confidence' came as a string and was read as a number"]
    assert obj["confidence"] == pytest.approx(0.85)
    assert schema_errors(obj, SCHEMA) == []
    errs = schema_errors({"answer": 3}, SCHEMA)
    assert any("'confidence' is a required property" in e for e in errs)
    assert any(e.startswith("answer:") for e in errs)


@pytest.mark.parametrize("raw, value", [(0.7, 0.7), (85, 0.85), (-1, 0.0), ("x", None), (True, None)])
def test_read_confidence(raw, value):
    got, _ = read_confidence({"confidence": raw})
    assert got == (pytest.approx(value) if value is not None else None)


# ------------------------------------------------------------------ public schema helpers


def make_step(**kw):
    from reasonkit.protocol.models import Step

    output = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "points": {"type": "array", "minItems": 3, "maxItems": 5, "items": {"type": "string"}},
            "other": {"type": "array", "items": {"type": "string"}},
        },
    }
    return Step(id="s", kind="generate", prompt="p", output=output, **kw)


def test_items_field_and_relaxed_schema_are_public():
    assert items_field(make_step()) == "points"
    assert items_field(make_step(items_field="other")) == "other"
    relaxed = relaxed_schema(make_step())
    assert (
        "minItems" not in relaxed["properties"]["points"]
        and "maxItems" not in relaxed["properties"]["points"]
    )
    assert make_step().output["properties"]["points"]["minItems"] == 3  # the step is untouched


def test_relaxed_schema_has_no_length_bounds_anywhere():
    step = make_step()
    step.output["properties"]["other"]["maxItems"] = 2
    step.output["properties"]["other"]["items"]["maxLength"] = 10
    step.output["properties"]["title"]["maxLength"] = 5
    relaxed = relaxed_schema(step)
    assert "maxLength" not in json.dumps(relaxed) and "maxItems" not in json.dumps(relaxed)
    assert schema_errors({"title": "a longer title", "other": ["x" * 40] * 3}, relaxed) == []
    assert step.output["properties"]["title"]["maxLength"] == 5  # the step is untouched


# ------------------------------------------------------------------ weak-model replies


@pytest.mark.parametrize(
    "raw, value, note",
    [
        (2.8, 0.028, "percentage"),
        ("85%", 0.85, "0.85"),
        ("85", 0.85, "percentage"),
        ("0.7", 0.7, "read as a number"),
        (" High ", 0.75, "0.75"),
        ("very low", 0.1, "0.1"),
        ("moderate", 0.5, "0.5"),
        (150, 1.0, "clamped to 1"),
        ("-5%", 0.0, "0"),
        (None, None, "null"),
        (float("nan"), None, "not a number"),
        (float("inf"), None, "not a number"),
        ("NaN", None, "not a number"),
        ("sure", None, "could not be read"),
        ([0.5], None, "could not be read"),
        (False, None, "not a number"),
    ],
)
def test_read_confidence_weak_model_values(raw, value, note):
    got, why = read_confidence({"confidence": raw})
    assert got == (pytest.approx(value) if value is not None else None)
    assert why is not None and note in why
    if got is not None:
        assert 0.0 <= got <= 1.0


def test_read_confidence_missing_or_plain_needs_no_note():
    assert read_confidence({}) == (None, None)
    assert read_confidence({"confidence": 0.4}) == (0.4, None)


def test_normalize_confidence_rewrites_or_removes():
    obj: dict[str, Any] = {"confidence": "high"}
    assert normalize_confidence(obj) == ["confidence 'high' read as 0.75"] and obj == {"confidence": 0.75}
    obj = {"confidence": float("nan"), "a": 1}
    assert "treated as missing" in normalize_confidence(obj)[0] and obj == {"a": 1}
    assert normalize_confidence({"a": 1}) == []


def test_coerce_numbers_refuses_non_finite_strings():
    obj = {"answer": "a", "confidence": "nan"}
    assert coerce_numbers(obj, SCHEMA) == [] and obj["confidence"] == "nan"


@pytest.mark.parametrize(
    "items, kept",
    [
        (["A b", "a  B", "a, b.", "c"], ["A b", "c"]),
        (["p1", "p2", "p3"], ["p1", "p2", "p3"]),
        (
            [{"name": "X", "lens": "y"}, {"lens": "Y", "name": "x"}, {"name": "z"}],
            [{"name": "X", "lens": "y"}, {"name": "z"}],
        ),
        (
            [
                "The long-term economic effect of the policy on small firms",
                "The long-term economic effects of the policy on small firms",
            ],
            ["The long-term economic effect of the policy on small firms"],
        ),
        (
            [
                "Step 1 of the plan: gather the data from every regional office",
                "Step 2 of the plan: gather the data from every regional office",
            ],
            [
                "Step 1 of the plan: gather the data from every regional office",
                "Step 2 of the plan: gather the data from every regional office",
            ],
        ),
    ],
)
def test_dedupe_items(items, kept):
    assert dedupe_items(items) == (kept, len(items) - len(kept))


def test_dedupe_lists_notes_each_list():
    obj = {"a": ["x", "X", "x "], "b": ["y"], "c": "not a list"}
    assert dedupe_lists(obj) == ["2 repeated items removed from 'a'"]
    assert obj == {"a": ["x"], "b": ["y"], "c": "not a list"}


@pytest.mark.parametrize(
    "text, obj",
    [
        ('{"answer": "a long answer that was cu', {"answer": "a long answer that was cu"}),
        ('{"answer": "a", "items": [{"k": "v"}, {"k": "w', {"answer": "a", "items": [{"k": "v"}]}),
        ('{"answer": "a", "conf', {"answer": "a"}),
        ('{"answer": "a", "note": "ends with an escape \\', {"answer": "a"}),
    ],
)
def test_truncated_json_is_salvaged(text, obj):
    ex = extract_object(text)
    assert ex.obj == obj and ex.salvaged


def test_complete_json_is_not_marked_salvaged():
    assert not extract_object('{"a": 1}').salvaged
    assert not extract_object('x {"a": 1} y').salvaged


def test_a_schema_gets_its_validator_built_once(monkeypatch):
    """Validating a reply is cheap next to building the validator (its reference resolver): one
    step's schema is validated against every reply without building another (issue 26)."""
    import jsonschema

    built: list[int] = []
    real = jsonschema.Draft202012Validator

    def counting(*args: Any, **kwargs: Any) -> Any:  # a spy on the library, not on our code
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsonschema, "Draft202012Validator", counting)
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert schema_errors({"a": 1}, schema) == []
    assert schema_errors({"a": "x"}, schema) == ["a: 'x' is not of type 'integer'"]
    assert schema_errors({}, schema) == ["(top level): 'a' is a required property"]
    assert len(built) == 1
    other = {**schema}  # another schema (equal or not) gets its own
    assert schema_errors({"a": 1}, other) == [] and len(built) == 2
    step = make_step()  # a step with an items field: its relaxed schema is one dict, built once
    for _ in range(3):
        assert schema_errors({"points": ["a"] * 9}, relaxed_schema(step)) == []
    assert len(built) == 3
