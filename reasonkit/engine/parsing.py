"""Recover a step's structured output from a model reply, and check it against the step's schema.

Recovery only ever removes packaging (prose around JSON, code fences, an unfinished tail) or turns a
numeric string into a number where the schema wants a number. It never invents a field or a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


@dataclass
class Extraction:
    obj: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def _loads_obj(text: str) -> dict[str, Any] | None:
    try:
        v = json.loads(text)
    except (json.JSONDecodeError, ValueError):
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


def _close_truncated(fragment: str) -> dict[str, Any] | None:
    """Cut an unfinished JSON object back to its last complete member and close it."""
    stack: list[str] = []
    in_str, esc = False, False
    cut_points: list[tuple[int, list[str]]] = []  # positions where a member just completed
    for i, c in enumerate(fragment):
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if stack:
                stack.pop()
            cut_points.append((i + 1, list(stack)))
        elif c == ",":
            cut_points.append((i, list(stack)))
    for pos, open_stack in reversed(cut_points):
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
                return Extraction(obj, ["reply was cut off; kept the complete part"])
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
                obj[name] = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
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


def schema_errors(obj: Any, schema: dict[str, Any], limit: int = 8) -> list[str]:
    from jsonschema import Draft202012Validator

    out = []
    for err in sorted(Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top level)"
        out.append(f"{where}: {err.message[:200]}")
        if len(out) >= limit:
            break
    return out


def drop_invalid_fields(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """For a degraded result: remove top-level fields whose value is invalid, so later steps and the
    user only see content that passed its own field's schema. Returns the removed names."""
    from jsonschema import Draft202012Validator

    removed = []
    for name, spec in (schema.get("properties") or {}).items():
        if name in obj and isinstance(spec, dict) and not Draft202012Validator(spec).is_valid(obj[name]):
            del obj[name]
            removed.append(name)
    return removed


def read_confidence(obj: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """The model's own confidence, as 0..1. Percentages (e.g. 85) are read as 0.85."""
    if not obj or "confidence" not in obj:
        return None, None
    v = obj["confidence"]
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None, None
    if 1.0 < v <= 100.0:
        return v / 100.0, f"confidence {v} read as a percentage"
    return max(0.0, min(1.0, float(v))), None
