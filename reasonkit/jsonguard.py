"""JSON from outside, parsed with a bound on its nesting depth.

Python's parser recurses once per level: a line such as ``[[[[...]]]]`` a thousand levels deep makes
`json.loads` raise `RecursionError` (not a `JSONDecodeError`), which escapes every `except
ValueError` and ends as a traceback; values a few hundred levels deep that do parse can still
exhaust the stack in the code that walks them. `loads` measures the depth first, without recursion,
and refuses anything deeper than `max_depth` with a `JsonDepthError` (a `ValueError`, so callers that
already turn bad JSON into a clear message keep doing so).

Used by `rk eval` for dataset lines; meant for every other door that takes JSON from outside (the
HTTP server can answer a `JsonDepthError` with 400).

Layer 0: the standard library and reasonkit.errors only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reasonkit.errors import JsonDepthError

__all__ = ["MAX_DEPTH", "depth_exceeds", "loads"]

#: Deeper than any document ReasonKit reads (MCP requests, tool arguments, eval items: under 20).
MAX_DEPTH = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def depth_exceeds(text: str | bytes, max_depth: int = MAX_DEPTH) -> bool:
    """True when arrays/objects in `text` nest deeper than `max_depth` (brackets inside strings do
    not count). Linear, no recursion; stops at the first level too deep."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group(0) in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(text)`, or `JsonDepthError` when it nests deeper than `max_depth`."""
    if depth_exceeds(text, max_depth):
        raise JsonDepthError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
