"""What is kept of a reply still invalid after repair (reasonkit/engine/salvage.py)."""

from reasonkit.engine.salvage import drop_invalid_fields, drop_invalid_items
from tests.engine.test_parsing import SCHEMA


def test_drop_invalid_fields_never_invents():
    obj = {"answer": 3, "confidence": 0.4, "items": ["ok"]}
    assert drop_invalid_fields(obj, SCHEMA) == ["answer"]
    assert obj == {"confidence": 0.4, "items": ["ok"]}


def test_drop_invalid_items_keeps_the_valid_ones():
    obj = {"answer": "a", "items": ["ok", 3, "fine", None], "confidence": 0.4}
    assert drop_invalid_items(obj, SCHEMA) == ["2 invalid items of 4 removed from 'items'"]
    assert obj["items"] == ["ok", "fine"]
    # nothing valid left, or a list that is still invalid without its bad items: left to drop_invalid_fields
    none_left = {"items": [1, 2]}
    assert drop_invalid_items(none_left, SCHEMA) == [] and none_left == {"items": [1, 2]}
    bounded = {"properties": {"items": {"type": "array", "minItems": 3, "items": {"type": "string"}}}}
    short = {"items": ["a", "b", 3]}
    assert drop_invalid_items(short, bounded) == [] and short == {"items": ["a", "b", 3]}
