"""A step's structured output in reading order, shared by the terminal and the HTML views.

Key fields first (the answer, the verdict, the thesis, ...), then the other short values, then
lists, then nested objects; `confidence` is shown apart (the views show it next to the step), and
empty values are left out. Nothing here formats: the views decide how a list or a long text looks.
"""

from __future__ import annotations

from typing import Any

#: Fields that carry a step's conclusion, shown first in this order when present.
KEY_FIELDS = (
    "answer",
    "bottom_line",
    "verdict",
    "rating",
    "grade",
    "thesis",
    "conclusion",
    "supported_conclusion",
    "perspective",
    "position",
    "finding",
    "question",
    "statement_precise",
    "framing",
    "consensus",
    "reason",
    "validity",
    "soundness",
    "determined",
)
HIDDEN = frozenset({"confidence"})


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def ordered(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The fields of an output object in reading order, without `confidence` and empty values."""
    present = [(k, v) for k, v in obj.items() if k not in HIDDEN and not is_empty(v)]
    rank = {k: i for i, k in enumerate(KEY_FIELDS)}

    def key(item: tuple[int, tuple[str, Any]]) -> tuple[int, int, int]:
        index, (name, value) = item
        if name in rank:
            return (0, rank[name], index)
        if is_scalar(value):
            return (1, 0, index)
        return (2 if isinstance(value, list) else 3, 0, index)

    return [kv for _, kv in sorted(enumerate(present), key=key)]


def scalar_text(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
