"""reasonkit/jsonguard.py: JSON from outside with a bounded nesting depth, measured without recursion."""

from __future__ import annotations

import json

import pytest

from reasonkit.errors import JsonDepthError, ReasonKitError
from reasonkit.jsonguard import MAX_DEPTH, depth_exceeds, loads


@pytest.mark.parametrize("deep", ["[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000, "[" * 100_000])
def test_deep_nesting_is_one_clear_error_not_a_recursion_error(deep):
    with pytest.raises(JsonDepthError, match=f"deeper than {MAX_DEPTH} levels") as info:
        loads(deep)
    assert isinstance(info.value, ReasonKitError) and isinstance(info.value, ValueError)
    with pytest.raises(JsonDepthError):
        loads(deep.encode())


def test_within_the_limit_parses_as_json_loads_does():
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(ok) == json.loads(ok)
    assert loads('{"q": "[[[[[[ {{{{ not structure", "n": [1, {"x": "\\"]]]"}]}') == {
        "q": "[[[[[[ {{{{ not structure",
        "n": [1, {"x": '"]]]'}],
    }
    assert not depth_exceeds('"' + "[" * 5000 + '"')  # brackets inside a string
    assert depth_exceeds("[[[", max_depth=2) and not depth_exceeds("[[]]", max_depth=2)


def test_bad_json_is_still_a_decode_error():
    with pytest.raises(json.JSONDecodeError):
        loads("{nope")
