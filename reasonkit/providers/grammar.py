"""JSON-schema helpers for grammar-constrained local generation (providers/local.py).

A small model asked for a list tends to repeat items until `max_tokens` cuts the JSON in half. The
grammar makes malformed JSON impossible; `capped_schema` also bounds what the grammar allows (items
per list, characters per string) so that a reply can always close within the token cap. Item counts
stay the engine's business: it still penalises fewer items than a step's `min_items`.
"""

from __future__ import annotations

from typing import Any

# Keywords that only describe a value; they never change what the grammar accepts.
_DESCRIPTIVE = ("description", "title", "examples", "default", "$comment")
# Keywords whose value maps names (of fields or definitions) to schemas.
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def capped_schema(schema: dict[str, Any], max_items: int | None, max_string: int | None) -> dict[str, Any]:
    """A copy of `schema` whose arrays hold at most `max_items` items and whose free-text strings
    hold at most `max_string` characters. Objects lose `additionalProperties` (extra keys would only
    cost tokens). `None` leaves that bound as the schema has it."""

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(x) for x in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: visit(sub) for name, sub in value.items()}
            elif key not in _DESCRIPTIVE:
                out[key] = visit(value)
        kind = out.get("type")
        if kind == "object" or "properties" in out:
            out["additionalProperties"] = False
        if kind == "array" and max_items is not None:
            upper = min(int(out.get("maxItems", max_items)), max_items)
            out["maxItems"] = upper
            if "minItems" in out:
                out["minItems"] = min(int(out["minItems"]), upper)
        if (
            kind == "string"
            and max_string is not None
            and not ({"enum", "const", "pattern", "format"} & set(out))
        ):
            out["maxLength"] = min(int(out.get("maxLength", max_string)), max_string)
            if "minLength" in out:
                out["minLength"] = min(int(out["minLength"]), out["maxLength"])
        return out

    result = visit(schema)
    return result if isinstance(result, dict) else {}


def without_max_length(node: Any) -> Any:
    """A copy of a schema with no `maxLength` anywhere (for grammar builders that cannot take long
    ones, see providers/openai_compat.py)."""
    if isinstance(node, list):
        return [without_max_length(x) for x in node]
    if not isinstance(node, dict):
        return node
    return {k: without_max_length(v) for k, v in node.items() if k != "maxLength"}


def _type_words(node: dict[str, Any], max_items: int | None) -> str:
    kind = node.get("type")
    if "enum" in node:
        return "one of " + ", ".join(repr(v) for v in node["enum"])
    if kind == "array":
        lo, hi = node.get("minItems"), node.get("maxItems")
        if max_items is not None:
            hi = min(hi, max_items) if hi is not None else max_items
            lo = min(lo, hi) if lo is not None else None
        if lo is not None and hi is not None:
            bound = f"{hi} " if lo == hi else f"{lo}-{hi} "
        else:
            bound = f"at most {hi} " if hi is not None else f"at least {lo} " if lo else ""
        item = node.get("items", {})
        what = "objects" if isinstance(item, dict) and item.get("type") == "object" else "values"
        if isinstance(item, dict) and item.get("type") in ("string", "number", "integer", "boolean"):
            what = f"{item['type']}s"
        return f"list of {bound}{what}"
    if kind in ("number", "integer"):
        lo, hi = node.get("minimum"), node.get("maximum")
        return f"{kind} {lo:g} to {hi:g}" if lo is not None and hi is not None else str(kind)
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind or "value")


def summarize_schema(schema: dict[str, Any], max_items: int | None = None, width: int = 160) -> str:
    """The schema as a short field list for the prompt (a small model follows a list of fields
    better than raw JSON schema)."""
    lines: list[str] = []

    def fields(node: dict[str, Any], depth: int) -> None:
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            if not isinstance(prop, dict):
                continue
            need = "required" if name in required else "optional"
            desc = " ".join(str(prop.get("description", "")).split())
            if len(desc) > width:
                desc = desc[: width - 3] + "..."
            line = f"{'  ' * depth}- {name} ({_type_words(prop, max_items)}, {need})"
            lines.append(line + (f": {desc}" if desc else ""))
            item = prop.get("items") if prop.get("type") == "array" else prop
            if isinstance(item, dict) and item.get("properties") and depth < 3:
                fields(item, depth + 1)

    fields(schema, 0)
    return "\n".join(lines)


# A number in 0..1 with at most three decimals ("0.85", "1", "0"), and any other number without an
# exponent: the stock rule allows "1e999", which parses as infinity.
UNIT_NUMBER_RULE = '("0" ("." [0-9] ([0-9] [0-9]?)?)? | "1" ("." "0" ("0" "0"?)?)?) space'
PLAIN_NUMBER_RULE = '"-"? ([0-9] | [1-9] [0-9] ([0-9] ([0-9] [0-9]?)?)?) ("." [0-9] ([0-9] [0-9]?)?)? space'


def _is_unit_interval(node: dict[str, Any]) -> bool:
    low, high = node.get("minimum"), node.get("maximum")
    return isinstance(low, int | float) and isinstance(high, int | float) and 0 <= low and high <= 1


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """GBNF for `schema` (llama-cpp-python's converter), with bounded number rules. Imports
    llama_cpp: call it only where the local provider runs."""
    from llama_cpp.llama_grammar import SchemaConverter

    class Converter(SchemaConverter):  # type: ignore[misc]
        def visit(self, node: Any, name: str) -> str:
            if isinstance(node, dict) and node.get("type") == "number":
                rule = UNIT_NUMBER_RULE if _is_unit_interval(node) else PLAIN_NUMBER_RULE
                label = f"{name}-number" if name else "root"
                return str(self._add_rule(label, rule))
            return str(super().visit(node, name))

    converter = Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.visit(converter.resolve_refs(schema, "schema"), "")
    return str(converter.format_grammar())
