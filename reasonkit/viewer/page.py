"""The HTML report of one run: one self-contained file (inline CSS and SVG, no scripts, nothing
loaded from anywhere; a Content-Security-Policy says so to the browser). On top: the question,
the profile or tool, the answer, the confidence against its threshold and the status; then the
confidence waterfall, the timeline, the step graph, and every entry and step with its output for
reading, its prompt and raw response collapsible, its model calls, tokens and cost.

Every piece of user and model text goes through `html.escape`."""

from __future__ import annotations

import json
import time
from html import escape
from typing import TYPE_CHECKING, Any

from reasonkit import __version__
from reasonkit.presentation import fmt, run_view
from reasonkit.viewer import svg
from reasonkit.viewer.fields import KEY_FIELDS, ordered, scalar_text
from reasonkit.viewer.graph import entry_dag, step_dag
from reasonkit.viewer.style import CSS

if TYPE_CHECKING:
    from reasonkit.presentation import CallView, EntryView, FactorView, RunView, StepView
    from reasonkit.protocol.loader import Registry

__all__ = ["CSP", "LEGEND", "badge", "document", "html_value", "render_page"]

#: No script, no external resource of any kind: inline styles and data: images only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'"


def document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body><main>{body}</main></body></html>\n"
    )


def badge(status: Any) -> str:
    return f'<span class="badge {svg.status_class(status)}">{escape(str(status))}</span>'


def html_value(value: Any) -> str:
    """A structured output as nested definition lists (key fields first) and bullet lists."""
    if isinstance(value, dict):
        rows = []
        for name, v in ordered(value):
            key = ' class="key"' if name in KEY_FIELDS[:8] else ""
            rows.append(f"<dt{key}>{escape(fmt.label(name))}</dt><dd{key}>{html_value(v)}</dd>")
        return f'<dl class="out">{"".join(rows)}</dl>' if rows else '<span class="muted">(empty)</span>'
    if isinstance(value, list):
        items = "".join(f"<li>{html_value(v)}</li>" for v in value)
        return f"<ul>{items}</ul>" if items else '<span class="muted">(none)</span>'
    return escape(scalar_text(value))


def _facts(pairs: list[tuple[str, str]]) -> str:
    return (
        '<div class="facts">' + "".join(f"<span>{escape(k)} <b>{v}</b></span>" for k, v in pairs) + "</div>"
    )


def _alerts(prefix: str, texts: list[str], cls: str = "alert") -> list[str]:
    return [f'<div class="{cls}">{prefix}: {escape(text)}</div>' for text in texts]


def _header(v: RunView, back: str | None) -> str:
    meets = "meets" if v.meets_threshold else "below"
    verdict = f'<span class="verdict-{meets}">{meets} the threshold {v.min_confidence:.2f}</span>'
    confidence = escape(fmt.conf(v.confidence) + fmt.calibrated(v.confidence_raw))
    parts = []
    if back:
        parts.append(f'<div class="crumbs"><a href="{escape(back)}">← recent runs</a></div>')
    parts.append(f"<h1>{escape(v.question)}</h1>")
    parts.append(
        _facts(
            [
                (v.kind, escape(v.name)),
                ("status", badge(v.status)),
                ("confidence", f"{confidence} · {verdict}"),
                ("run", f"<code>{escape(v.run_id)}</code>"),
            ]
        )
    )
    parts.append(_facts([(name, escape(text)) for name, text in fmt.run_facts(v)]))
    if v.stop_reason:
        parts += _alerts("stopped", [v.stop_reason])
    parts += _alerts("error", v.errors, "alert error")
    parts += _alerts("note", v.all_notes)
    if len(v.inputs) > 1 or (v.inputs and "query" not in v.inputs):
        parts.append(f"<details><summary>Inputs</summary>{html_value(v.inputs)}</details>")
    return "<header>" + "".join(parts) + "</header>"


def _breakdown_table(factors: list[FactorView]) -> str:
    if not factors:
        return ""
    rows = "".join(
        f'<tr><td>{escape(f.signal)}</td><td class="num">{escape(fmt.signed(f.delta, f.signal))}</td>'
        f"<td>{escape(f.detail)}</td></tr>"
        for f in factors
    )
    return f'<table><tr><th>signal</th><th class="num">delta</th><th>detail</th></tr>{rows}</table>'


def _calls_table(calls: list[CallView]) -> str:
    rows = [
        f"<tr><td>{escape(c.purpose)}</td><td>{escape(c.provider)} {escape(c.model)}</td>"
        f'<td class="num">{escape(fmt.secs(c.duration_ms))}</td>'
        f'<td class="num">{c.tokens.total}</td>'
        f'<td class="num">{escape(fmt.usd(c.cost_usd))}</td>'
        f"<td>{escape('; '.join(fmt.call_notes(c)))}</td></tr>"
        for c in calls
    ]
    head = (
        '<tr><th>call</th><th>model</th><th class="num">time</th><th class="num">tokens</th>'
        '<th class="num">cost</th><th>notes</th></tr>'
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _step_details(s: StepView, title: str) -> list[str]:
    """What a step did: its items (or its output), its prompt, its raw reply, its model calls."""
    parts = []
    if s.items:
        for item in s.items:
            index = "?" if item.item_index is None else str(item.item_index)
            summary = f"item {index} · {item.status} · conf {fmt.conf(item.confidence)}"
            parts.append(
                f"<details><summary>{escape(summary)}</summary>{_step(item, f'{title} #{index}')}</details>"
            )
    elif s.output is not None:
        parts.append(html_value(s.output))
    prompt = "\n\n".join(p for p in (s.system, s.prompt) if p)
    if prompt:
        parts.append(f"<details><summary>Prompt</summary><pre>{escape(prompt)}</pre></details>")
    raw = s.raw_response or next((c.raw_response for c in reversed(s.calls) if c.raw_response), "")
    if raw:
        parts.append(f"<details><summary>Raw response</summary><pre>{escape(_pretty(raw))}</pre></details>")
    if s.calls:
        parts.append(f"<details><summary>Model calls</summary>{_calls_table(s.calls)}</details>")
    return parts


def _step(s: StepView, title: str) -> str:
    parts = [
        f'<div class="step {svg.status_class(s.status)}"><h4>{escape(title)} '
        f'<span class="muted">{escape(s.kind)}</span> {badge(s.status)}</h4>',
        _facts(
            [
                ("confidence", escape(fmt.conf(s.confidence))),
                ("time", escape(fmt.secs(s.duration_ms))),
                ("usage", escape(fmt.tokens_text(s.tokens))),
                ("cost", escape(fmt.usd(s.cost_usd))),
                ("calls", str(len(s.calls))),
            ]
        ),
    ]
    if s.error:
        why = "why" if s.status in ("skipped", "degraded") else "error"
        parts += _alerts(why, [s.error], "alert error" if s.status == "failed" else "alert")
    parts += _alerts("note", s.notes)
    if len(s.confidence_breakdown) > 1 or s.status == "degraded":
        table = _breakdown_table(s.confidence_breakdown)
        parts.append(f"<details open><summary>Confidence breakdown</summary>{table}</details>")
    return "".join(parts + _step_details(s, title)) + "</div>"


def _pretty(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def _entry(e: EntryView) -> str:
    title = escape(fmt.entry_title(e.entry, e.protocol))
    summary = f"{title} {badge(e.status)} conf {escape(fmt.conf(e.confidence))}"
    if e.ran:
        summary += f' <span class="muted">{escape(" · ".join(fmt.entry_numbers(e)))}</span>'
    body = _alerts("why skipped", [e.skip_reason] if e.skip_reason else [])
    if e.answer:
        body.append(f'<div class="answer">{escape(e.answer)}</div>')
    if e.confidence_breakdown:
        body.append(
            "<details><summary>Confidence breakdown</summary>"
            f"{_breakdown_table(e.confidence_breakdown)}</details>"
        )
    if e.inputs:
        body.append(f"<details><summary>Inputs</summary>{html_value(e.inputs)}</details>")
    body += [_step(s, s.step_id) for s in e.steps]
    return (
        f'<details class="entry" open id="entry-{escape(e.entry)}"><summary>{summary}</summary>'
        f"{''.join(body)}</details>"
    )


LEGEND = "".join(
    f'<span><i class="badge s-{s}"></i>{s}</span>'
    for s in ("ok", "degraded", "failed", "skipped", "cancelled")
)


def _graphs(v: RunView, registry: Registry | None) -> str:
    figures = []
    chain = entry_dag(v, registry)
    if chain is not None and chain.nodes:
        note = " (inferred from timing)" if chain.inferred else ""
        figures.append(f"<figure>{svg.dag(chain, 'chain')}<figcaption>entries{note}</figcaption></figure>")
    for i, e in enumerate(v.entries):
        graph = step_dag(e, registry)
        if not graph.nodes:
            continue
        note = " (inferred from timing)" if graph.inferred else ""
        caption = f"{escape(e.entry)}{note}"
        figures.append(f"<figure>{svg.dag(graph, f'e{i}')}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="graphs">{"".join(figures)}</div>'


def render_page(
    run: RunView | dict[str, Any], *, registry: Registry | None = None, back: str | None = None
) -> str:
    """The report of a run (its view, or a stored trace as `StoreBackend.get` returns it) as one HTML
    document. `registry`: the protocols and profiles, for the step graph (else it is inferred from
    timing); `back`: a link to the list of runs (served pages)."""
    v = run_view(run)
    answer = v.answer.strip()
    entries = "".join(_entry(e) for e in v.entries) or '<p class="muted">No entries were recorded.</p>'
    body = [
        _header(v, back),
        "<section><h2>Answer</h2>",
        f'<div class="answer">{escape(answer)}</div>' if answer else '<p class="muted">No answer.</p>',
        "</section><section><h2>Confidence</h2>",
        svg.waterfall(v.confidence_breakdown, v.confidence, v.min_confidence),
        f"<details><summary>Breakdown table</summary>{_breakdown_table(v.confidence_breakdown)}"
        "</details></section>",
        "<section><h2>Timeline</h2>",
        f'<div class="legend">{LEGEND}<span><i class="call"></i>model call</span>'
        '<span><i class="call-cached"></i>cached call</span></div>',
        svg.gantt(v),
        "</section><section><h2>Step graph</h2>",
        _graphs(v, registry),
        "</section><section><h2>Entries and steps</h2>",
        entries,
        "</section>",
        f"<footer>ReasonKit {escape(__version__)} · report made {escape(time.strftime('%Y-%m-%d %H:%M:%S'))}"
        " · this file loads nothing from the network</footer>",
    ]
    return document(f"ReasonKit run {v.run_id}: {v.question[:80]}", "".join(body))
