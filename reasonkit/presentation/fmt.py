"""Numbers, times and short phrases as every surface shows them: the text and markdown renderings,
the MCP tool results, the HTML report, the terminal views and `rk runs`. One function per thing
shown, so a confidence or a cost can never read one way on a page and another in a terminal."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonkit.presentation.view import CallView, EntryView, RunView, TokensView

UNKNOWN_PRICE = "price unknown for some models: cost not counted"
#: Breakdown signals that are the starting value, not an adjustment: shown without a sign.
BASE_SIGNALS = ("weighted_mean", "model")


def conf(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def calibrated(raw: float | None) -> str:
    """What follows a calibrated confidence: `, calibrated from 0.74` (nothing when uncalibrated)."""
    return "" if raw is None else f", calibrated from {raw:.2f}"


def secs(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def local_time(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def iso_time(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 in the local zone (machine-readable listings); None when unset."""
    if not ts:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def tokens_text(tokens: TokensView) -> str:
    """`1234 tokens (1000 in, 234 out)`, with the cache counts only when there are any."""
    parts = [f"{tokens.input} in", f"{tokens.output} out"]
    if tokens.cache_read:
        parts.append(f"{tokens.cache_read} cache read")
    if tokens.cache_write:
        parts.append(f"{tokens.cache_write} cache write")
    return f"{tokens.total} tokens ({', '.join(parts)})"


def usd(value: float | None) -> str:
    return f"${float(value or 0.0):.4f}"


def cost_text(cost_usd: float, price_known: bool) -> str:
    """A run's cost, with the one wording for unknown prices."""
    return usd(cost_usd) + ("" if price_known else f" ({UNKNOWN_PRICE})")


def signed(delta: float, signal: str) -> str:
    """A breakdown delta: the base (`weighted_mean`, `model`) unsigned, the others with their sign."""
    if signal in BASE_SIGNALS:
        return f"{delta:.3f}"
    delta = round(delta, 3) + 0.0  # a zero shows as +0.000, never +-0.000
    return f"{'+' if delta >= 0 else ''}{delta:.3f}"


def label(key: str) -> str:
    """A field name for reading: `key_insights` -> `key insights`."""
    return key.replace("_", " ")


def target(kind: str, name: str) -> str:
    """What a run ran, for listings: `balanced (profile)`, or just the tool's name."""
    return f"{name} ({kind})" if kind == "profile" else name


def run_facts(v: RunView) -> list[tuple[str, str]]:
    """When a run ran, what it used and on what, as (label, text) rows: the HTML report's second
    line of facts and the end of `header_rows`. A fact added here shows on the page and in both
    terminal views."""
    rows = [
        ("started", f"{local_time(v.started_at)}   finished {local_time(v.finished_at)}"),
        ("duration", secs(v.duration_ms)),
        ("usage", f"{tokens_text(v.tokens)}   cost {cost_text(v.cost_usd, v.price_known)}"),
    ]
    if v.answer_tool:
        rows.append(
            ("answer from", f"{v.answer_tool} (entry {v.answer_entry})" if v.answer_entry else v.answer_tool)
        )
    return rows + ([("provider", v.model_text)] if v.model_text else [])


def header_rows(v: RunView) -> list[tuple[str, str]]:
    """The head of a run in a terminal (`rk runs show`, with or without `--full`) as (label, text)
    rows: its status and confidence against the threshold, then `run_facts`."""
    threshold = f"({'meets' if v.meets_threshold else 'below'} the threshold {v.min_confidence:.2f})"
    return [
        ("status", v.status + (f" ({v.stop_reason})" if v.stop_reason else "")),
        ("confidence", f"{conf(v.confidence)}{calibrated(v.confidence_raw)}  {threshold}"),
        *run_facts(v),
    ]


def call_notes(c: CallView) -> list[str]:
    """What happened on the way to a model call's answer: the cache, retries, fallbacks, an error."""
    notes = [f"cached{f' in {c.cache_layer}' if c.cache_layer else ''}"] if c.cached else []
    if c.attempts > 1:
        notes.append(f"{c.attempts} attempts")
    notes += [f"fallback from {fb.get('provider', '?')}: {fb.get('reason', '')}" for fb in c.fallbacks]
    return notes + ([f"error: {c.error}"] if c.error else [])


def entry_numbers(e: EntryView) -> list[str]:
    """An entry that ran, in numbers: `(meets 0.70)`, its time, its tokens, its cost."""
    verdict = "meets" if e.meets_threshold else "below"
    return [
        f"({verdict} {e.min_confidence:.2f})",
        secs(e.duration_ms),
        tokens_text(e.tokens),
        usd(e.cost_usd),
    ]


def entry_title(entry: str, protocol: str) -> str:
    """A chain entry's title: its id, and its protocol when the id differs from it."""
    return entry if entry == protocol else f"{entry} ({protocol})"
