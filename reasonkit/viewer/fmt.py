"""Numbers and times as every view of a run shows them."""

from __future__ import annotations

import time
from typing import Any

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


def conf(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def secs(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def local_time(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def token_total(tokens: dict[str, Any] | None) -> int:
    tokens = tokens or {}
    return sum(int(tokens.get(k) or 0) for k in TOKEN_KINDS)


def tokens_text(tokens: dict[str, Any] | None) -> str:
    """`1234 tokens (1000 in, 234 out)`, with the cache counts only when there are any."""
    tokens = tokens or {}
    parts = [f"{int(tokens.get('input') or 0)} in", f"{int(tokens.get('output') or 0)} out"]
    if tokens.get("cache_read"):
        parts.append(f"{int(tokens['cache_read'])} cache read")
    if tokens.get("cache_write"):
        parts.append(f"{int(tokens['cache_write'])} cache write")
    return f"{token_total(tokens)} tokens ({', '.join(parts)})"


def usd(value: float | None) -> str:
    return f"${float(value or 0.0):.4f}"


def signed(delta: float, signal: str) -> str:
    """A breakdown delta: the base (`weighted_mean`, `model`) unsigned, the others with their sign."""
    if signal in ("weighted_mean", "model"):
        return f"{delta:.3f}"
    delta = round(delta, 3) + 0.0  # a zero shows as +0.000, never +-0.000
    return f"{'+' if delta >= 0 else ''}{delta:.3f}"


def label(key: str) -> str:
    """A field name for reading: `key_insights` -> `key insights`."""
    return key.replace("_", " ")
