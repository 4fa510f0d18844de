"""Recover a step's structured output from a model reply, and check it against the step's schema.

Recovery only ever removes packaging (prose around JSON, code fences, an unfinished tail), turns a
numeric string into a number where the schema wants a number, reads the model's `confidence` into
0..1 and removes repeated list items. It never invents a field or a value.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from reasonkit.protocol.models import Step

__all__ = [
    "CONFIDENCE_WORDS",
    "Extraction",
    "coerce_numbers",
    "dedupe_items",
    "dedupe_lists",
    "extract_object",
    "items_field",
    "normalize_confidence",
    "read_confidence",
    "relaxed_schema",
    "schema_errors",
]

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


@dataclass
class Extraction:
    obj: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    # True when the reply was unfinished JSON and a prefix of it was closed and kept
    salvaged: bool = False


def items_field(step: Step) -> str | None:
    """The list field whose length min_items / max_items bound: `items_field`, else the first array."""
    if step.items_field:
        return step.items_field
    props = step.output.get("properties", {})
    return next((k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "array"), None)


# Length bounds size a reply (engine/sizing.py) and bound the embedded model's grammar; a reply that
# runs a little past one is complete and useful, so it is never repaired or dropped for that.
_LENGTH_BOUNDS = ("maxLength", "maxItems")


def _without_length_bounds(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_length_bounds(x) for x in node]
    if not isinstance(node, dict):
        return node
    return {k: _without_length_bounds(v) for k, v in node.items() if k not in _LENGTH_BOUNDS}


#: Validators by the id of their schema (kept alive beside it, so the id cannot be reused): a step's
#: schema is one long-lived dict, and building a validator (its reference resolver) cost more than
#: validating a reply with it (issue 26). Bounded: schemas made per call only cycle through it.
_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}
_VALIDATORS_MAX = 512


_VALIDATORS_LOCK = threading.Lock()
#: A step's relaxed schema by the id of the step (kept alive beside it, with the output it came from).
_RELAXED: dict[int, tuple[Step, dict[str, Any], dict[str, Any]]] = {}


def relaxed_schema(step: Step) -> dict[str, Any]:
    """The schema a reply is checked against: the step's, without maxLength / maxItems anywhere
    (see _LENGTH_BOUNDS) and without minItems on its items field: item counts are the engine's
    job (trim to max_items, penalise fewer than min_items), so a list with 13 perspectives instead of
    12 must not be thrown away as invalid. The same dict for the same step and output, so that its
    validator is built once (`_validator`)."""
    hit = _RELAXED.get(id(step))
    if hit is not None and hit[0] is step and hit[1] is step.output:
        return hit[2]
    schema = _relaxed(step)
    with _VALIDATORS_LOCK:
        if len(_RELAXED) >= _VALIDATORS_MAX:
            _RELAXED.pop(next(iter(_RELAXED)))
        _RELAXED[id(step)] = (step, step.output, schema)
    return schema


def _relaxed(step: Step) -> dict[str, Any]:
    schema: dict[str, Any] = _without_length_bounds(step.output)
    name = items_field(step)
    if name and isinstance(schema.get("properties", {}).get(name), dict):
        prop = {k: v for k, v in schema["properties"][name].items() if k != "minItems"}
        schema = {**schema, "properties": {**schema["properties"], name: prop}}
    return schema


def _loads_obj(text: str) -> dict[str, Any] | None:
    try:
        v = json.loads(text)
    except (json.JSONDecodeError, ValueError, RecursionError):
        return None
    return v if isinstance(v, dict) else None


def _balanced_end(text: str, start: int) -> int | None:
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i
    return None


@dataclass
class _TruncationScan:
    """One pass over a cut-off JSON object: the open arrays and objects (`stack`, as their closers),
    whether it stops inside a string and whether that string is a top-level member's value, and the
    positions where a member had just completed (`cut_points`, with the stack open there)."""

    stack: list[str] = field(default_factory=list)
    in_str: bool = False
    esc: bool = False
    value_string: bool = False  # the open string is the value of a top-level member
    expect_value: bool = False  # a ':' was just seen at the top level
    cut_points: list[tuple[int, list[str]]] = field(default_factory=list)

    def feed(self, i: int, c: str) -> None:
        if self.in_str:
            self._in_string(i, c)
        else:
            self._structural(i, c)

    def _in_string(self, i: int, c: str) -> None:
        if self.esc:
            self.esc = False
        elif c == "\\":
            self.esc = True
        elif c == '"':
            self.in_str = False
            if self.value_string:
                self.cut_points.append((i + 1, list(self.stack)))
            self.value_string = False

    def _structural(self, i: int, c: str) -> None:
        if c == '"':
            self.in_str = True
            self.value_string = self.expect_value and len(self.stack) == 1
            self.expect_value = False
        elif c == ":" and len(self.stack) == 1:
            self.expect_value = True
        elif c in "{[":
            self.stack.append("}" if c == "{" else "]")
            self.expect_value = False
        elif c in "}]":
            if self.stack:
                self.stack.pop()
            self.cut_points.append((i + 1, list(self.stack)))
        elif c == ",":
            self.cut_points.append((i, list(self.stack)))
            self.expect_value = False


def _close_truncated(fragment: str) -> dict[str, Any] | None:
    """Close an unfinished JSON object. A top-level string value cut mid-text (a long answer) is
    closed where it stops; otherwise the object is cut back to its last complete member (a half
    written list item is dropped) and every open array and object is closed."""
    scan = _TruncationScan()
    for i, c in enumerate(fragment):
        scan.feed(i, c)
    if scan.in_str and scan.value_string and not scan.esc:
        obj = _loads_obj(fragment + '"' + "".join(reversed(scan.stack)))
        if obj is not None:
            return obj
    for pos, open_stack in reversed(scan.cut_points):
        candidate = fragment[:pos].rstrip().rstrip(",") + "".join(reversed(open_stack))
        obj = _loads_obj(candidate)
        if obj is not None:
            return obj
    return None


def extract_object(text: str) -> Extraction:
    text = (text or "").strip()
    if not text:
        return Extraction(None, ["empty reply"])
    obj = _loads_obj(text)
    if obj is not None:
        return Extraction(obj)
    for m in _FENCE.finditer(text):
        obj = _loads_obj(m.group(1).strip())
        if obj is not None:
            return Extraction(obj, ["JSON was inside a code fence"])
    start = text.find("{")
    while start != -1:
        end = _balanced_end(text, start)
        if end is None:
            obj = _close_truncated(text[start:])
            if obj is not None:
                return Extraction(obj, ["reply was cut off; kept the complete part"], salvaged=True)
            break
        obj = _loads_obj(text[start : end + 1])
        if obj is not None:
            return Extraction(obj, ["JSON had prose around it"])
        start = text.find("{", start + 1)
    return Extraction(None, ["no JSON object found in the reply"])


def coerce_numbers(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Top-level fields the schema types as number/integer/boolean but came as strings like "0.8"."""
    notes = []
    for name, spec in (schema.get("properties") or {}).items():
        if name not in obj or not isinstance(obj[name], str) or not isinstance(spec, dict):
            continue
        raw = obj[name].strip()
        t = spec.get("type")
        try:
            if t == "number":
                value = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
                if not math.isfinite(value):
                    continue
                obj[name] = value
            elif t == "integer":
                obj[name] = int(raw)
            elif t == "boolean" and raw.lower() in ("true", "false"):
                obj[name] = raw.lower() == "true"
            else:
                continue
        except ValueError:
            continue
        notes.append(f"'{name}' came as a string and was read as a {t}")
    return notes


def _validator(schema: dict[str, Any]) -> Any:
    hit = _VALIDATORS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    with _VALIDATORS_LOCK:
        if len(_VALIDATORS) >= _VALIDATORS_MAX:
            _VALIDATORS.pop(next(iter(_VALIDATORS)))
        _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def schema_errors(obj: Any, schema: dict[str, Any], limit: int = 8) -> list[str]:
    out = []
    for err in sorted(_validator(schema).iter_errors(obj), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top level)"
        out.append(f"{where}: {err.message[:200]}")
        if len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------------------------- confidence
# Words small models write instead of a number (docs/confidence.md lists them).
CONFIDENCE_WORDS: dict[str, float] = {
    "very high": 0.9,
    "high": 0.75,
    "medium": 0.5,
    "moderate": 0.5,
    "low": 0.25,
    "very low": 0.1,
}


def _confidence_number(value: float, shown: str) -> tuple[float | None, str | None]:
    if not math.isfinite(value):
        return None, f"confidence {shown} is not a number; treated as missing"
    if value < 0:
        return 0.0, f"confidence {shown} is below 0; clamped to 0"
    if value <= 1:
        return value, None
    if value <= 100:
        return value / 100.0, f"confidence {shown} read as a percentage ({value / 100.0:g})"
    return 1.0, f"confidence {shown} is above 100; clamped to 1"


def read_confidence(obj: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """The model's own confidence as (value in 0..1 or None, note saying what was done or None).

    Numbers in 0..1 are taken as they are; numbers above 1 up to 100 are percentages (85 -> 0.85,
    2.8 -> 0.028); below 0 -> 0; above 100 -> 1. Strings: "85%" -> 0.85, "0.7" -> 0.7, "85" -> 0.85,
    and the words in CONFIDENCE_WORDS. null, NaN, infinities, booleans and anything else -> None
    (missing) with a note. A missing field -> (None, None)."""
    if not obj or "confidence" not in obj:
        return None, None
    v = obj["confidence"]
    if v is None:
        return None, "confidence was null; treated as missing"
    if isinstance(v, bool):
        return None, f"confidence {v!r} is not a number; treated as missing"
    if isinstance(v, int | float):
        return _confidence_number(float(v), f"{v!r}")
    if isinstance(v, str):
        text = " ".join(v.strip().lower().split())
        shown = repr(v[:40])
        if text in CONFIDENCE_WORDS:
            value = CONFIDENCE_WORDS[text]
            return value, f"confidence {shown} read as {value:g}"
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            return None, f"confidence {shown} could not be read; treated as missing"
        if percent:
            if not math.isfinite(number):
                return None, f"confidence {shown} could not be read; treated as missing"
            value = max(0.0, min(1.0, number / 100.0))
            return value, f"confidence {shown} read as {value:g}"
        value_or_none, note = _confidence_number(number, shown)
        return value_or_none, note or f"confidence {shown} came as a string and was read as a number"
    return None, f"confidence of type {type(v).__name__} could not be read; treated as missing"


def normalize_confidence(obj: dict[str, Any]) -> list[str]:
    """Replace the reply's `confidence` by its reading in 0..1 (read_confidence); an unreadable one is
    removed, so it counts as missing (the schema check then asks for it like any missing field)."""
    if "confidence" not in obj:
        return []
    value, note = read_confidence(obj)
    if value is None:
        del obj["confidence"]
    else:
        obj["confidence"] = value
    return [note] if note else []


# ---------------------------------------------------------------------------------- repeated items
_NON_WORD = re.compile(r"[\W_]+", re.U)
_DIGITS = re.compile(r"\d+")


def _item_key(item: Any) -> str:
    text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, ensure_ascii=False)
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def _near_identical(a: str, b: str) -> bool:
    """Long items that differ only in a few characters, and not in their numbers ("step 1"/"step 2")."""
    if min(len(a), len(b)) < 40 or _DIGITS.findall(a) != _DIGITS.findall(b):
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= 0.95 and matcher.ratio() >= 0.95


def dedupe_items(items: list[Any]) -> tuple[list[Any], int]:
    """Remove repeated items (a small model's repetition loop): equal once case, whitespace and
    punctuation are ignored, or near-identical long texts. Keeps the first of each; returns
    (kept, number removed)."""
    kept: list[Any] = []
    keys: list[str] = []
    seen: set[str] = set()
    for item in items:
        key = _item_key(item)
        if key in seen:
            continue
        if len(keys) < 200 and any(_near_identical(key, k) for k in keys):
            continue
        seen.add(key)
        keys.append(key)
        kept.append(item)
    return kept, len(items) - len(kept)


def dedupe_lists(obj: dict[str, Any]) -> list[str]:
    """dedupe_items on every top-level list of the reply; one note per list that had repeats."""
    notes = []
    for name, value in obj.items():
        if isinstance(value, list) and len(value) > 1:
            kept, removed = dedupe_items(value)
            if removed:
                obj[name] = kept
                noun = "item" if removed == 1 else "items"
                notes.append(f"{removed} repeated {noun} removed from '{name}'")
    return notes
