"""The whole run as plain text for a terminal (`rk runs show --full`): the header, the answer, the
confidence breakdown, then every entry and step with its status (and why it was degraded or
skipped), confidence, time, tokens, cost, model calls and its structured output for reading (key
fields first, lists as bullets, long text wrapped to the width)."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from reasonkit.presentation import fmt, run_view
from reasonkit.viewer.fields import is_scalar, ordered, scalar_text

if TYPE_CHECKING:
    from reasonkit.presentation import CallView, EntryView, FactorView, RunView, StepView

MIN_WIDTH = 40


def _wrap(text: str, first: str, rest: str, width: int) -> list[str]:
    """`text` wrapped to `width` (wider only under a very deep indent), paragraph by paragraph
    (its own line breaks are kept); `first` starts the first line, `rest` the others."""
    out: list[str] = []
    width = max(width, len(first) + 20, len(rest) + 20)
    for n, para in enumerate(str(text).splitlines() or [""]):
        lead = first if n == 0 else rest
        wrapped = textwrap.wrap(
            para,
            width,
            initial_indent=lead,
            subsequent_indent=rest,
            break_long_words=True,
            break_on_hyphens=False,
        )
        out += wrapped or [lead.rstrip()]
    return out


def value_lines(value: Any, indent: str, width: int) -> list[str]:
    """A structured output (object, list or value) as indented, wrapped lines."""
    if isinstance(value, dict):
        out: list[str] = []
        for name, v in ordered(value):
            out += _field(name, v, indent, width)
        return out
    if isinstance(value, list):
        return _bullets(value, indent, width)
    return _wrap(scalar_text(value), indent, indent, width)


def _field(name: str, value: Any, indent: str, width: int) -> list[str]:
    if is_scalar(value):
        return _wrap(f"{fmt.label(name)}: {scalar_text(value)}", indent, indent + "    ", width)
    return [f"{indent}{fmt.label(name)}:", *value_lines(value, indent + "  ", width)]


def _bullets(items: list[Any], indent: str, width: int) -> list[str]:
    out: list[str] = []
    for item in items:
        if is_scalar(item):
            out += _wrap(scalar_text(item), indent + "- ", indent + "  ", width)
            continue
        inner = value_lines(item, indent + "  ", width)
        if inner:
            inner[0] = indent + "- " + inner[0][len(indent) + 2 :]
        out += inner or [indent + "- (empty)"]
    return out


def _breakdown(factors: list[FactorView], indent: str, width: int) -> list[str]:
    out: list[str] = []
    for f in factors:
        text = f"{f.signal}: {fmt.signed(f.delta, f.signal)}" + (f" ({f.detail})" if f.detail else "")
        out += _wrap(text, indent, indent + "    ", width)
    return out


def _calls(calls: list[CallView]) -> str:
    parts = []
    for c in calls:
        notes = fmt.call_notes(c)
        parts.append(f"{c.purpose} {fmt.secs(c.duration_ms)}" + (f" ({'; '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def _step(s: StepView, indent: str, title: str, width: int) -> list[str]:
    head = (
        f"{indent}{title}  {s.status}  conf {fmt.conf(s.confidence)}  "
        f"{fmt.secs(s.duration_ms)}  {fmt.tokens_text(s.tokens)}  {fmt.usd(s.cost_usd)}"
    )
    out = _wrap(head, "", indent + "    ", width)
    sub = indent + "  "
    if s.provider or s.model:
        out.append(f"{sub}model: {s.provider} {s.model}".rstrip())
    if s.error:
        reason = "why" if s.status in ("skipped", "degraded") else "error"
        out += _wrap(f"{reason}: {s.error}", sub, sub + "    ", width)
    for note in s.notes:
        out += _wrap(f"note: {note}", sub, sub + "    ", width)
    if s.calls:
        out += _wrap(f"calls: {_calls(s.calls)}", sub, sub + "    ", width)
    if len(s.confidence_breakdown) > 1 or s.status == "degraded":
        out.append(f"{sub}confidence breakdown:")
        out += _breakdown(s.confidence_breakdown, sub + "  ", width)
    if s.output is not None and not s.items:
        out.append(f"{sub}output:")
        out += value_lines(s.output, sub + "  ", width)
    for item in s.items:
        out += _step(item, sub, f"item {'?' if item.item_index is None else item.item_index}", width)
    return out


def _header(v: RunView, width: int) -> list[str]:
    lines = [f"run {v.run_id}  {v.kind} {v.name}"]
    for name, value in fmt.header_rows(v):
        lines += _wrap(value, f"  {name:<12}", " " * 14, width)
    for name, value in v.inputs.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += _wrap(f"{name}: {text}", "  input ", "        ", width)
    for error in v.errors:
        lines += _wrap(f"error: {error}", "  ", "      ", width)
    for note in v.all_notes:
        lines += _wrap(f"note: {note}", "  ", "      ", width)
    return lines


def _entry(e: EntryView, width: int) -> list[str]:
    lines = ["", "=" * min(width, 72)]
    head = f"ENTRY {fmt.entry_title(e.entry, e.protocol)}  {e.status}  conf {fmt.conf(e.confidence)}"
    if e.ran:
        head += " " + "  ".join(fmt.entry_numbers(e))
    lines += _wrap(head, "", "    ", width)
    if e.skip_reason:
        lines += _wrap(f"why skipped: {e.skip_reason}", "  ", "      ", width)
    if e.confidence_breakdown:
        lines.append("  confidence breakdown:")
        lines += _breakdown(e.confidence_breakdown, "    ", width)
    for s in e.steps:
        lines.append("")
        lines += _step(s, "  ", f"STEP {s.step_id} [{s.kind or '?'}]", width)
    return lines


def render_full(run: RunView | dict[str, Any], width: int = 100) -> str:
    """Every entry and step of a run (its view, or a stored trace), for reading in a terminal
    `width` columns wide."""
    width = max(MIN_WIDTH, width)
    v = run_view(run)
    lines = _header(v, width)
    lines += ["", "ANSWER"]
    answer = v.answer.strip()
    lines += _wrap(answer, "  ", "  ", width) if answer else ["  (no answer)"]
    lines += ["", f"CONFIDENCE {fmt.conf(v.confidence)}{fmt.calibrated(v.confidence_raw)}"]
    lines += _breakdown(v.confidence_breakdown, "  ", width) or ["  (no breakdown)"]
    for e in v.entries:
        lines += _entry(e, width)
    return "\n".join(lines)
