"""The whole run as plain text for a terminal (`rk runs show --full`): the header, the answer, the
confidence breakdown, then every entry and step with its status (and why it was degraded or
skipped), confidence, time, tokens, cost, model calls and its structured output for reading (key
fields first, lists as bullets, long text wrapped to the width)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from reasonkit.render import cost_text
from reasonkit.viewer import fmt
from reasonkit.viewer.fields import is_scalar, ordered, scalar_text

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


def _breakdown(factors: list[dict[str, Any]], indent: str, width: int) -> list[str]:
    out: list[str] = []
    for f in factors or []:
        signal = str(f.get("signal", "?"))
        text = f"{signal}: {fmt.signed(float(f.get('delta') or 0.0), signal)}"
        if f.get("detail"):
            text += f" ({f['detail']})"
        out += _wrap(text, indent, indent + "    ", width)
    return out


def _calls(calls: list[dict[str, Any]]) -> str:
    parts = []
    for c in calls:
        text = f"{c.get('purpose', 'call')} {fmt.secs(c.get('duration_ms'))}"
        extra = []
        if c.get("cached"):
            extra.append(f"cached{' in ' + str(c['cache_layer']) if c.get('cache_layer') else ''}")
        if (c.get("attempts") or 0) > 1:
            extra.append(f"{c['attempts']} attempts")
        if c.get("fallbacks"):
            extra.append(f"after {len(c['fallbacks'])} fallback(s)")
        if c.get("error"):
            extra.append(f"error: {c['error']}")
        parts.append(text + (f" ({'; '.join(extra)})" if extra else ""))
    return ", ".join(parts)


def _step(s: dict[str, Any], indent: str, title: str, width: int) -> list[str]:
    head = (
        f"{indent}{title}  {s.get('status', '?')}  conf {fmt.conf(s.get('confidence'))}  "
        f"{fmt.secs(s.get('duration_ms'))}  {fmt.tokens_text(s.get('tokens'))}  {fmt.usd(s.get('cost_usd'))}"
    )
    out = _wrap(head, "", indent + "    ", width)
    sub = indent + "  "
    if s.get("provider") or s.get("model"):
        out.append(f"{sub}model: {s.get('provider', '')} {s.get('model', '')}".rstrip())
    if s.get("error"):
        reason = "why" if s.get("status") in ("skipped", "degraded") else "error"
        out += _wrap(f"{reason}: {s['error']}", sub, sub + "    ", width)
    for note in s.get("notes") or []:
        out += _wrap(f"note: {note}", sub, sub + "    ", width)
    if s.get("calls"):
        out += _wrap(f"calls: {_calls(s['calls'])}", sub, sub + "    ", width)
    factors = s.get("confidence_breakdown") or []
    if len(factors) > 1 or s.get("status") == "degraded":
        out.append(f"{sub}confidence breakdown:")
        out += _breakdown(factors, sub + "  ", width)
    output = s.get("output")
    if output is not None and not s.get("items"):
        out.append(f"{sub}output:")
        out += value_lines(output, sub + "  ", width)
    for item in s.get("items") or []:
        out += _step(item, sub, f"item {item.get('item_index', '?')}", width)
    return out


def _header(t: dict[str, Any], width: int) -> list[str]:
    status = str(t.get("status", "?")) + (f" ({t['stop_reason']})" if t.get("stop_reason") else "")
    meets = "meets" if t.get("meets_threshold") else "below"
    cost = cost_text(float(t.get("cost_usd") or 0.0), bool(t.get("price_known", True)))
    threshold = float(t.get("min_confidence") or 0)
    started, finished = fmt.local_time(t.get("started_at")), fmt.local_time(t.get("finished_at"))
    rows = [
        ("status", status),
        ("confidence", f"{fmt.conf(t.get('confidence'))}  ({meets} the threshold {threshold:.2f})"),
        ("started", f"{started}   finished {finished}"),
        ("duration", fmt.secs(t.get("duration_ms"))),
        ("usage", f"{fmt.tokens_text(t.get('tokens'))}   cost {cost}"),
    ]
    lines = [f"run {t.get('run_id')}  {t.get('kind')} {t.get('name')}"]
    for name, value in rows:
        lines += _wrap(value, f"  {name:<12}", " " * 14, width)
    if t.get("provider") or t.get("model"):
        lines.append(f"  provider    {t.get('provider', '')} {t.get('model', '')}".rstrip())
    for name, value in (t.get("inputs") or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += _wrap(f"{name}: {text}", "  input ", "        ", width)
    for error in t.get("errors") or []:
        lines += _wrap(f"error: {error}", "  ", "      ", width)
    for note in t.get("notes") or []:
        lines += _wrap(f"note: {note}", "  ", "      ", width)
    return lines


def render_full(trace: dict[str, Any], width: int = 100) -> str:
    """Every entry and step of a stored run, for reading in a terminal `width` columns wide."""
    width = max(MIN_WIDTH, width)
    t = trace
    lines = _header(t, width)
    lines += ["", "ANSWER"]
    answer = str(t.get("answer") or "").strip()
    lines += _wrap(answer, "  ", "  ", width) if answer else ["  (no answer)"]
    lines += ["", f"CONFIDENCE {fmt.conf(t.get('confidence'))}"]
    lines += _breakdown(t.get("confidence_breakdown") or [], "  ", width) or ["  (no breakdown)"]
    for e in t.get("entries") or []:
        entry, proto = e.get("entry", "?"), e.get("protocol", "?")
        title = entry if entry == proto else f"{entry} ({proto})"
        lines += ["", "=" * min(width, 72)]
        head = f"ENTRY {title}  {e.get('status', '?')}  conf {fmt.conf(e.get('confidence'))}"
        if e.get("status") not in ("skipped", "pending"):
            meets = "meets" if e.get("meets_threshold") else "below"
            head += (
                f" ({meets} {float(e.get('min_confidence') or 0):.2f})  {fmt.secs(e.get('duration_ms'))}  "
                f"{fmt.tokens_text(e.get('tokens'))}  {fmt.usd(e.get('cost_usd'))}"
            )
        lines += _wrap(head, "", "    ", width)
        if e.get("skip_reason"):
            lines += _wrap(f"why skipped: {e['skip_reason']}", "  ", "      ", width)
        if e.get("confidence_breakdown"):
            lines.append("  confidence breakdown:")
            lines += _breakdown(e["confidence_breakdown"], "    ", width)
        for s in e.get("steps") or []:
            lines.append("")
            lines += _step(s, "  ", f"STEP {s.get('step_id', '?')} [{s.get('kind', '?')}]", width)
    return "\n".join(lines)
