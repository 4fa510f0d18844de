"""Inline TOML JSON-schema tables for test protocols (shared by the engine and server tests)."""

from __future__ import annotations

_OBJ = '{{ type = "object", required = [{req}], properties = {{ {props} }} }}'


def schema(**props: str) -> str:
    """schema(answer='string', items='array') -> an inline TOML object schema that also has the
    required numeric `confidence`; 'array' means a list of strings."""
    all_props = {**props, "confidence": "number"}
    body = ", ".join(
        f'{k} = {{ type = "array", items = {{ type = "string" }} }}'
        if v == "array"
        else f'{k} = {{ type = "{v}" }}'
        for k, v in all_props.items()
    )
    return _OBJ.format(req=", ".join(f'"{k}"' for k in all_props), props=body)
