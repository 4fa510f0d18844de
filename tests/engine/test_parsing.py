import pytest

from reasonkit.engine.parsing import (
    coerce_numbers,
    drop_invalid_fields,
    extract_object,
    read_confidence,
    schema_errors,
)

SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}, "items": {"type": "array", "items": {"type": "string"}}},
}


@pytest.mark.parametrize(
    "text, obj, note",
    [
        ('{"answer": "a", "confidence": 0.5}', {"answer": "a", "confidence": 0.5}, None),
        ('```json\n{"answer": "a"}\n```', {"answer": "a"}, "code fence"),
        ('Here you go: {"answer": "x {y}", "confidence": 1} hope it helps', {"answer": "x {y}", "confidence": 1}, "prose"),
        ('{"answer": "a", "items": ["one", "tw', {"answer": "a", "items": ["one"]}, "cut off"),
        ('{"answer": "a", "items": ["one", "two"], "confidence": 0.', {"answer": "a", "items": ["one", "two"]}, "cut off"),
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


def test_drop_invalid_fields_never_invents():
    obj = {"answer": 3, "confidence": 0.4, "items": ["ok"]}
    assert drop_invalid_fields(obj, SCHEMA) == ["answer"]
    assert obj == {"confidence": 0.4, "items": ["ok"]}


@pytest.mark.parametrize("raw, value", [(0.7, 0.7), (85, 0.85), (-1, 0.0), ("x", None), (True, None)])
def test_read_confidence(raw, value):
    got, _ = read_confidence({"confidence": raw})
    assert got == (pytest.approx(value) if value is not None else None)
