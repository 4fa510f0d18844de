"""What is kept of a reply still invalid after its repair call: the fields (and list items) that
pass their own part of the schema, so later steps and the user only see content that is valid, and
one malformed item does not cost the valid ones beside it."""

from __future__ import annotations

from typing import Any

__all__ = ["drop_invalid_fields", "drop_invalid_items"]


def drop_invalid_items(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """For a degraded result, before drop_invalid_fields: a top-level list with a few invalid items
    keeps its valid ones (one malformed perspective must not cost the other eleven), provided what
    is left is valid for the field. Returns one note per list that lost items."""
    from jsonschema import Draft202012Validator

    notes = []
    for name, spec in (schema.get("properties") or {}).items():
        value = obj.get(name)
        if (
            not isinstance(value, list)
            or not isinstance(spec, dict)
            or not isinstance(spec.get("items"), dict)
        ):
            continue
        field_check = Draft202012Validator(spec)
        if field_check.is_valid(value):
            continue
        item_check = Draft202012Validator(spec["items"])
        kept = [item for item in value if item_check.is_valid(item)]
        if kept and field_check.is_valid(kept):
            obj[name] = kept
            removed = len(value) - len(kept)
            noun = "item" if removed == 1 else "items"
            notes.append(f"{removed} invalid {noun} of {len(value)} removed from '{name}'")
    return notes


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
