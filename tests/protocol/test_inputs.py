"""Input coercion (reasonkit/protocol/inputs.py): once per call, errors name the input."""

from __future__ import annotations

import pytest

from reasonkit.errors import InputError, ReasonKitError
from reasonkit.protocol.inputs import coerce_inputs, parse_flag
from reasonkit.protocol.models import PROFILE_INPUTS, InputSpec

SPECS = {
    "query": InputSpec(type="string", required=True, max_length=10),
    "n": InputSpec(type="integer", default=3),
    "x": InputSpec(type="number"),
    "flag": InputSpec(type="boolean"),
}


def test_strings_from_clients_are_coerced():
    got = coerce_inputs(SPECS, {"query": "q", "n": " 5 ", "x": "0.5", "flag": "yes"}, "tool 't'")
    assert got == {"query": "q", "n": 5, "x": 0.5, "flag": True}
    assert coerce_inputs(SPECS, {"query": "q", "n": 4.0, "flag": "0"}, "t") == {
        "query": "q",
        "n": 4,
        "flag": False,
    }


def test_defaults_and_empty_optional_strings():
    assert coerce_inputs(SPECS, {"query": "q"}, "t") == {"query": "q", "n": 3}
    assert coerce_inputs(PROFILE_INPUTS, {"query": "q", "context": "  "}, "t") == {"query": "q"}


def test_non_strings_become_text():
    assert coerce_inputs(SPECS, {"query": 12}, "t")["query"] == "12"


@pytest.mark.parametrize(
    "given, message",
    [
        ({}, "input 'query' is required for tool 't'"),
        ({"query": "   "}, "input 'query' is required"),
        ({"query": "q", "bogus": 1}, "tool 't' has no input 'bogus'"),
        ({"query": "x" * 11}, "11 characters long; the limit is 10"),
        ({"query": "q", "n": 2.5}, "input 'n' must be integer"),
        ({"query": "q", "n": True}, "input 'n' must be integer"),
        ({"query": "q", "n": "three"}, "input 'n' must be integer"),
        ({"query": "q", "n": float("inf")}, "input 'n' must be integer"),
        ({"query": "q", "x": "nan"}, "input 'x' must be number"),
        ({"query": "q", "x": False}, "input 'x' must be number"),
        ({"query": "q", "flag": "maybe"}, "input 'flag' must be boolean"),
    ],
)
def test_errors_name_the_input(given, message):
    with pytest.raises(InputError, match=message) as info:
        coerce_inputs(SPECS, given, "tool 't'")
    assert isinstance(info.value, ReasonKitError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "raw, value", [(True, True), ("TRUE", True), (" yes ", True), (1, True), ("0", False), ("no", False)]
)
def test_parse_flag(raw, value):
    assert parse_flag(raw, "background") is value


def test_parse_flag_names_the_input():
    with pytest.raises(InputError, match="input 'background' must be boolean, got 'later'"):
        parse_flag("later", "background")
