"""Tool inputs, checked and coerced once per call (by the run service, or by the engine for callers
that pass unchecked inputs): "3" -> 3, "true" -> True; unknown, missing and too-long inputs are
errors that name the input."""

from __future__ import annotations

import math
from typing import Any

from reasonkit.errors import InputError
from reasonkit.protocol.models import InputSpec
from reasonkit.protocol.template import to_text

__all__ = [
    "background_flag",
    "coerce_inputs",
    "parse_flag",
]

_TRUE = ("true", "1", "yes")
_BOOLEAN_WORDS = (*_TRUE, "false", "0", "no")


def parse_flag(value: Any, name: str) -> bool:
    """A boolean input as clients send it: true/false, "true"/"false", "1"/"0", "yes"/"no" (any case).
    Raises InputError naming the input otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _BOOLEAN_WORDS:
        raise InputError(f"input '{name}' must be boolean, got {str(value)[:40]!r}")
    return text in _TRUE


def background_flag(value: Any) -> bool:
    """The `background` control input of a ThinkTool call (absent or empty: False), parsed by this
    one function wherever it is read (the HTTP gate's run-slot reservation and the tool handler), so
    the two can never disagree about which run is a background run. InputError when not boolean."""
    if value is None or value == "":
        return False
    return parse_flag(value, "background")


def _coerce(name: str, spec: InputSpec, value: Any) -> Any:
    """One value as its spec's type; ValueError / TypeError when it cannot be."""
    if spec.type == "string":
        return value if isinstance(value, str) else to_text(value)
    if spec.type == "integer":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError  # 2.5 is not an integer; int() would silently truncate it
        return int(value.strip()) if isinstance(value, str) else int(value)
    if spec.type == "number":
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number):
            raise ValueError  # "nan" and "inf" parse as floats but are not usable numbers
        return number
    if spec.type == "boolean":
        return parse_flag(value, name)
    return value


def coerce_inputs(specs: dict[str, InputSpec], given: dict[str, Any], what: str) -> dict[str, Any]:
    """The inputs `given` for `what` (e.g. "protocol 'gigathink'"), checked against `specs` and
    coerced to their types, defaults filled in. Raises InputError naming the input."""
    out: dict[str, Any] = {}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise InputError(f"{what} has no input {names} (inputs: {', '.join(specs)})")
    for name, spec in specs.items():
        value = given.get(name)
        if value is None or (isinstance(value, str) and value.strip() == "" and spec.type == "string"):
            if spec.required:
                raise InputError(f"input '{name}' is required for {what}")
            if spec.default is not None:
                out[name] = spec.default
            continue
        try:
            value = _coerce(name, spec, value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"input '{name}' must be {spec.type}, got {str(value)[:40]!r}") from None
        if spec.max_length and isinstance(value, str) and len(value) > spec.max_length:
            raise InputError(
                f"input '{name}' is {len(value)} characters long; the limit is {spec.max_length}"
            )
        out[name] = value
    return out
