"""A step's `max_tokens` sized to what its output schema can hold.

`max_tokens` is a ceiling, not a target: a model that writes a good reply stops long before it. A
model that loops (SmolLM2 in JSON mode against an OpenAI-compatible server) writes until the
ceiling, so a ceiling far above anything the schema can hold costs minutes per step for nothing.
The engine therefore lowers each call's `max_tokens` to the schema's capacity (`schema_tokens`,
times `SLACK`), never raising it above the step's own `max_tokens` (or `[llm] max_tokens`). The
rule (docs/protocol-authoring.md, "How long a reply may be"):

- a string: `maxLength` characters at `CHARS_PER_TOKEN`, else `STRING_TOKENS` (a paragraph); an
  `enum`: its longest value;
- a number, integer or boolean: `SCALAR_TOKENS`;
- an array: `maxItems` (the step's `max_items` after the small-model caps) items, else
  `DEFAULT_ITEMS`;
- an object: each property's key and value, plus the punctuation.
"""

from __future__ import annotations

import math
from typing import Any

CHARS_PER_TOKEN = 3  # on the short side for English: the estimate errs towards more room
STRING_TOKENS = 400  # a string without maxLength: about 300 words, a long paragraph of prose
SCALAR_TOKENS = 4
DEFAULT_ITEMS = 8  # an array without maxItems
SLACK = 1.25  # whitespace, escapes, a model's own formatting
MIN_TOKENS = 64  # never below this, whatever the schema says


def schema_tokens(schema: Any) -> int:
    """How many tokens a reply filling `schema` to its bounds needs, at most (see the module
    docstring). Unknown shapes count as one string."""
    if not isinstance(schema, dict):
        return STRING_TOKENS
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list) and variants:
        return max(schema_tokens(v) for v in variants)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else "null"
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        keys = sum(math.ceil(len(name) / CHARS_PER_TOKEN) + 3 for name in properties)
        return 2 + keys + sum(schema_tokens(value) for value in properties.values())
    if kind == "array":
        count = schema.get("maxItems")
        items = count if isinstance(count, int) and count >= 0 else DEFAULT_ITEMS
        return 2 + items * (schema_tokens(schema.get("items")) + 1)
    if kind in ("number", "integer", "boolean", "null"):
        return SCALAR_TOKENS
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return 2 + max(math.ceil(len(str(value)) / CHARS_PER_TOKEN) for value in enum)
    length = schema.get("maxLength")
    if isinstance(length, int) and length >= 0:
        return 2 + math.ceil(length / CHARS_PER_TOKEN)
    return STRING_TOKENS


def sized_max_tokens(schema: dict[str, Any] | None, ceiling: int) -> int:
    """The `max_tokens` of a call for `schema`: its capacity with `SLACK`, at most `ceiling`."""
    if not schema:
        return ceiling
    return min(ceiling, max(MIN_TOKENS, math.ceil(schema_tokens(schema) * SLACK)))
