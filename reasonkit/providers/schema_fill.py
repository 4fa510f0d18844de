"""`fill_schema`: the minimal valid, deterministic instance of a JSON schema (what `FakeProvider`
in fake.py answers with, and what tests/fakes/fake_llm.py serves over HTTP):

- objects get every property (required ones included even when `properties` omits them);
- arrays get `minItems` items, at least one (or `items` of them, kept within minItems/maxItems);
- numbers and integers are 1 moved into [minimum, maximum] (honouring exclusive bounds and
  `multipleOf`); a number property called `confidence` gets `confidence` (0.8 by default);
- strings are the property name, with a counter for the position in an array (`claim`,
  `claim-2`, ...), padded or cut to minLength/maxLength; common formats (date-time, date, time,
  email, uri, uuid, ipv4) get a valid value instead;
- `const` and the first `enum` value are used as they are (the n-th value for the n-th item of a
  `uniqueItems` array); anyOf/oneOf take the first non-null branch, allOf is merged, and `$ref`
  into the same document (`#/$defs/...`, `#/definitions/...`) is followed; a recursive optional
  branch stops with null. `pattern` is not supported.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from reasonkit.errors import ProviderError

__all__ = ["DEFAULT_CONFIDENCE", "fill_schema"]

DEFAULT_CONFIDENCE = 0.8
_MAX_REF_DEPTH = 64


def fill_schema(
    schema: dict[str, Any],
    *,
    items: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    tag: str = "",
) -> Any:
    """A minimal deterministic instance of the JSON `schema` (see the module docstring).

    `items`: how many items every array gets (default: `minItems`, at least one), kept within the
    array's minItems/maxItems. `confidence`: the value of number properties named `confidence`
    (kept within their bounds). `tag`: appended to every plain string (e.g. a call number, so that
    replies differ). Raises ProviderError (kind bad_request) for a schema it cannot fill: an unknown
    type, a `$ref` outside the document, or a required field that recurses forever."""
    filler = _SchemaFiller(schema, items=items, confidence=confidence, tag=tag)
    return filler.fill(schema, name="value", index=0, vary=False, ref_stack=(), minimal=False)


def _unfillable(message: str) -> ProviderError:
    return ProviderError("fake", "bad_request", f"fill_schema: {message}")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


class _SchemaFiller:
    def __init__(self, root: dict[str, Any], *, items: int | None, confidence: float, tag: str):
        self.root = root
        self.items = items
        self.confidence = confidence
        self.tag = tag

    # ------------------------------------------------------------------ references and combinators
    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise _unfillable(f"only local $ref supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise _unfillable(f"$ref {ref!r} does not resolve") from None
        return node

    def merge_all_of(self, schema: dict[str, Any], ref_stack: tuple[str, ...]) -> dict[str, Any]:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            sub = self.deref(sub, ref_stack)[0]
            if "allOf" in sub:
                sub = self.merge_all_of(sub, ref_stack)
            for key, value in sub.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                else:
                    merged.setdefault(key, value)
        return merged

    def deref(self, schema: Any, ref_stack: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...], bool]:
        """Follow $ref chains. Returns (schema, new ref stack, hit_recursion)."""
        recursive = False
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in ref_stack:
                recursive = True
            ref_stack = (*ref_stack, ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self.resolve(ref), **siblings}
        if schema is True or schema is None:
            schema = {}
        return schema, ref_stack, recursive

    # ------------------------------------------------------------------ values
    def fill(
        self, schema: Any, *, name: str, index: int, vary: bool, ref_stack: tuple[str, ...], minimal: bool
    ) -> Any:
        """`index` = position in the enclosing array (strings get a `-n` suffix for n > 0);
        `vary` = the array has uniqueItems, so enums and numbers must differ per index too;
        `minimal` = inside a recursive branch: required properties and minItems only."""
        if len(ref_stack) > _MAX_REF_DEPTH:
            raise _unfillable("schema recursion too deep (a required recursive field?)")
        schema, ref_stack, recursive = self.deref(schema, ref_stack)
        minimal = minimal or recursive
        if "allOf" in schema:
            schema = self.merge_all_of(schema, ref_stack)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema and schema["enum"]:
            return copy.deepcopy(schema["enum"][index % len(schema["enum"]) if vary else 0])
        for key in ("anyOf", "oneOf"):
            if key in schema and schema[key]:
                return self.fill_branch(
                    schema, key, name=name, index=index, vary=vary, ref_stack=ref_stack, minimal=minimal
                )

        typ = self.type_of(schema)
        if typ == "null":
            return None
        if typ == "boolean":
            return True
        if typ in ("number", "integer"):
            return self.number(schema, name=name, index=index if vary else 0, integer=typ == "integer")
        if typ == "string":
            return self.string(schema, name=name, index=index)
        if typ == "array":
            return self.array(schema, name=name, ref_stack=ref_stack, minimal=minimal)
        if typ == "object":
            return self.object(schema, index=index, vary=vary, ref_stack=ref_stack, minimal=minimal)
        raise _unfillable(f"unsupported type {typ!r}")

    def fill_branch(
        self,
        schema: dict[str, Any],
        key: str,
        *,
        name: str,
        index: int,
        vary: bool,
        ref_stack: tuple[str, ...],
        minimal: bool,
    ) -> Any:
        """anyOf / oneOf: the first non-null branch, merged with the keywords beside it."""
        options = list(schema[key])
        resolved = [self.deref(o, ref_stack) for o in options]
        nullable = any(r[0].get("type") == "null" for r in resolved)
        pick = next((i for i, r in enumerate(resolved) if r[0].get("type") != "null"), 0)
        if nullable and resolved[pick][2]:
            return None  # optional recursive branch (e.g. `parent: Node | None`): stop here
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        chosen = options[pick] if isinstance(options[pick], dict) else {}
        return self.fill(
            {**rest, **chosen}, name=name, index=index, vary=vary, ref_stack=ref_stack, minimal=minimal
        )

    @staticmethod
    def type_of(schema: dict[str, Any]) -> str:
        typ = schema.get("type")
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), "null")
        if typ is not None:
            return str(typ)
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"

    def number(self, schema: dict[str, Any], *, name: str, index: int, integer: bool) -> int | float:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(ex_lo, bool):  # draft-4: boolean modifiers of minimum/maximum
            lo, ex_lo = (None, lo) if ex_lo else (lo, None)
        if isinstance(ex_hi, bool):
            hi, ex_hi = (None, hi) if ex_hi else (hi, None)
        if integer:
            lowers = [math.ceil(lo)] if lo is not None else []
            lowers += [math.floor(ex_lo) + 1] if ex_lo is not None else []
            uppers = [math.floor(hi)] if hi is not None else []
            uppers += [math.ceil(ex_hi) - 1] if ex_hi is not None else []
            value: float = 1 + index
        else:
            eps = 0.01
            lowers = ([lo] if lo is not None else []) + ([ex_lo + eps] if ex_lo is not None else [])
            uppers = ([hi] if hi is not None else []) + ([ex_hi - eps] if ex_hi is not None else [])
            value = (self.confidence if name.lower() == "confidence" else 1) + index
        lower = max(lowers) if lowers else None
        upper = min(uppers) if uppers else None
        if lower is not None and upper is not None and lower > upper:
            # bounds tighter than our step: take the middle of the open interval
            low_bound = lo if lo is not None else ex_lo
            high_bound = hi if hi is not None else ex_hi
            assert low_bound is not None and high_bound is not None
            value = (low_bound + high_bound) / 2
        else:
            if lower is not None:
                value = max(value, lower)
            if upper is not None:
                value = min(value, upper)
        multiple = schema.get("multipleOf")
        if multiple:
            value = math.ceil(round(value / multiple, 9)) * multiple
            if upper is not None and value > upper:
                value -= multiple
        if integer:
            return int(value)
        return round(float(value), 10) if not float(value).is_integer() else value

    def string(self, schema: dict[str, Any], *, name: str, index: int) -> str:
        fmt = schema.get("format")
        n = index + 1
        if fmt == "date-time":
            value = f"2024-01-{min(n, 28):02d}T00:00:00Z"
        elif fmt == "date":
            value = f"2024-01-{min(n, 28):02d}"
        elif fmt == "time":
            value = f"00:00:{min(index, 59):02d}Z"
        elif fmt == "email":
            value = f"{_slug(name)}{'' if index == 0 else n}@example.com"
        elif fmt in ("uri", "url", "iri", "uri-reference"):
            value = f"https://example.com/{_slug(name)}{'' if index == 0 else n}"
        elif fmt == "uuid":
            value = f"00000000-0000-4000-8000-{n:012d}"
        elif fmt == "ipv4":
            value = f"192.0.2.{n % 255}"
        else:
            value = (name if index == 0 else f"{name}-{n}") + self.tag
        min_len = schema.get("minLength", 0)
        max_len = schema.get("maxLength")
        if len(value) < min_len:
            value = value + "x" * (min_len - len(value))
        if max_len is not None and len(value) > max_len:
            value = value[:max_len]
        return value

    def array(
        self, schema: dict[str, Any], *, name: str, ref_stack: tuple[str, ...], minimal: bool
    ) -> list[Any]:
        min_items = int(schema.get("minItems", 0))
        if minimal:
            count = min_items
        elif self.items is not None:
            count = max(min_items, self.items)
        else:
            count = max(min_items, 1)
        if schema.get("maxItems") is not None:
            count = min(count, int(schema["maxItems"]))
        prefix = schema.get("prefixItems") or []
        item_schema = schema.get("items", {})
        if isinstance(item_schema, list):  # draft-7 tuple form
            prefix, item_schema = item_schema, schema.get("additionalItems", {})
        vary = bool(schema.get("uniqueItems"))
        return [
            self.fill(
                prefix[i] if i < len(prefix) else item_schema,
                name=name,
                index=i,
                vary=vary,
                ref_stack=ref_stack,
                minimal=minimal,
            )
            for i in range(count)
        ]

    def object(
        self, schema: dict[str, Any], *, index: int, vary: bool, ref_stack: tuple[str, ...], minimal: bool
    ) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = [p for p in props if p in required] if minimal else list(props)
        names += [r for r in required if r not in names]
        return {
            p: self.fill(
                props.get(p, {"type": "string"}),
                name=p,
                index=index,
                vary=vary,
                ref_stack=ref_stack,
                minimal=minimal,
            )
            for p in names
        }
