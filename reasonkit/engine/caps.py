"""Small-model caps: fewer list items, fewer tokens per call and fewer samples per step, for models
such as the embedded SmolLM2-135M. A capped step is an ordinary Step with smaller bounds; its prompt
and schema say the smaller numbers, and the run's notes say what was trimmed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reasonkit.engine.parsing import items_field
from reasonkit.errors import ConfigError
from reasonkit.protocol.models import Step

PREFIX = "small-model caps: "


@dataclass(frozen=True)
class StepCaps:
    """Upper bounds applied to every step. None leaves that part as the protocol says.

    max_items caps a step's max_items and min_items (a step asking for 10-12 perspectives asks for 4
    with max_items=4); max_tokens caps every call; samples caps the samples per step."""

    max_items: int | None = None
    max_tokens: int | None = None
    samples: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_items", "max_tokens", "samples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"small-model cap {name} must be a positive whole number, got {value!r}")


def _bounds(low: int | None, high: int | None, joiner: str = "-") -> str:
    if low is not None and high is not None:
        return str(high) if low == high else f"{low}{joiner}{high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _rewrite(text: str, old: tuple[int | None, int | None], new: tuple[int | None, int | None]) -> str:
    """Say the capped numbers where the protocol's text names the old bounds ("10 to 12", "10-12",
    "at least 10", "up to 12")."""
    (old_low, old_high), (new_low, new_high) = old, new
    if old_low is not None and old_high is not None:
        pattern = rf"(?<![\d.]){old_low}(\s*(?:-|–|to)\s*){old_high}(?![\d.])"

        def repl(m: re.Match[str]) -> str:
            joiner = " to " if "to" in m.group(1) else "-"
            return _bounds(new_low, new_high, joiner)

        text = re.sub(pattern, repl, text)
    if old_low is not None and new_low != old_low:
        text = re.sub(rf"(at least\s+){old_low}(?![\d.])", rf"\g<1>{new_low}", text)
    if old_high is not None and new_high != old_high:
        text = re.sub(rf"((?:up to|at most)\s+){old_high}(?![\d.])", rf"\g<1>{new_high}", text)
    return text


def _capped_schema(
    step: Step,
    field: str | None,
    old: tuple[int | None, int | None],
    new: tuple[int | None, int | None],
    cap: int,
) -> dict[str, Any]:
    schema = step.output
    prop = schema.get("properties", {}).get(field) if field else None
    if not isinstance(prop, dict):
        return schema
    prop = dict(prop)
    for key in ("minItems", "maxItems"):
        if isinstance(prop.get(key), int) and prop[key] > cap:
            prop[key] = cap
    if isinstance(prop.get("description"), str):
        prop["description"] = _rewrite(prop["description"], old, new)
    return {**schema, "properties": {**schema["properties"], field: prop}}


def cap_step(step: Step, caps: StepCaps | None, max_tokens: int) -> tuple[Step, int, dict[str, str]]:
    """(the step as it will run, the max_tokens of its calls, {kind: what changed}) where kind is
    "items", "max_tokens" or "samples"."""
    if caps is None:
        return step, max_tokens, {}
    changes: dict[str, str] = {}
    update: dict[str, Any] = {}
    cap = caps.max_items
    if cap is not None and (step.min_items or 0) + (step.max_items or 0) > 0:
        old = (step.min_items, step.max_items)
        new = (
            None if step.min_items is None else min(step.min_items, cap),
            None if step.max_items is None else min(step.max_items, cap),
        )
        if new != old:
            field = items_field(step)
            update.update(min_items=new[0], max_items=new[1])
            update["prompt"] = _rewrite(step.prompt, old, new)
            if step.system:
                update["system"] = _rewrite(step.system, old, new)
            update["output"] = _capped_schema(step, field, old, new, cap)
            changes["items"] = f"asked for {_bounds(*new)} items instead of {_bounds(*old)}"
    if caps.samples is not None and step.samples > caps.samples:
        update["samples"] = caps.samples
        update["agree_on"] = step.agree_on if caps.samples > 1 else None
        changes["samples"] = f"{step.samples} -> {caps.samples}"
    if caps.max_tokens is not None and max_tokens > caps.max_tokens:
        changes["max_tokens"] = f"{max_tokens} -> {caps.max_tokens}"
        max_tokens = caps.max_tokens
    return (step.model_copy(update=update) if update else step), max_tokens, changes


def cap_lines(notes: dict[str, dict[str, str]]) -> list[str]:
    """One line per kind of trimming, from {kind: {"protocol.step": change}}."""
    lines = []
    items = notes.get("items", {})
    if items:
        lines.append(PREFIX + "; ".join(f"{where} {change}" for where, change in items.items()))
    for kind in ("max_tokens", "samples"):
        by_change: dict[str, list[str]] = {}
        for where, change in notes.get(kind, {}).items():
            by_change.setdefault(change, []).append(where)
        if by_change:
            parts = [f"{change} ({', '.join(where)})" for change, where in by_change.items()]
            lines.append(f"{PREFIX}{kind} " + "; ".join(parts))
    return lines
