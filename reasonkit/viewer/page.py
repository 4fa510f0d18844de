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
from reasonkit.render import cost_text
from reasonkit.viewer import fmt, svg
from reasonkit.viewer.fields import KEY_FIELDS, ordered, scalar_text
from reasonkit.viewer.graph import entry_dag, step_dag
from reasonkit.viewer.style import CSS

if TYPE_CHECKING:
    from reasonkit.protocol.loader import Registry

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


def question(trace: dict[str, Any]) -> str:
    """The run's main input: `query` when there is one, else the first text input."""
    inputs = trace.get("inputs") or {}
    if isinstance(inputs.get("query"), str):
        return str(inputs["query"])
    for value in inputs.values():
        if isinstance(value, str) and value.strip():
            return value
    return f"{trace.get('kind', 'run')} {trace.get('name', '')}"


def _facts(pairs: list[tuple[str, str]]) -> str:
    return (
        '<div class="facts">' + "".join(f"<span>{escape(k)} <b>{v}</b></span>" for k, v in pairs) + "</div>"
    )


def _header(t: dict[str, Any], back: str | None) -> str:
    meets = bool(t.get("meets_threshold"))
    threshold = float(t.get("min_confidence") or 0.0)
    verdict = (
        f'<span class="verdict-{"meets" if meets else "below"}">'
        f"{'meets' if meets else 'below'} the threshold {threshold:.2f}</span>"
    )
    cost = cost_text(float(t.get("cost_usd") or 0.0), bool(t.get("price_known", True)))
    parts = []
    if back:
        parts.append(f'<div class="crumbs"><a href="{escape(back)}">← recent runs</a></div>')
    parts.append(f"<h1>{escape(question(t))}</h1>")
    parts.append(
        _facts(
            [
                (str(t.get("kind", "run")), escape(str(t.get("name", "")))),
                ("status", badge(t.get("status"))),
                ("confidence", f"{fmt.conf(t.get('confidence'))} · {verdict}"),
                ("run", f"<code>{escape(str(t.get('run_id', '')))}</code>"),
            ]
        )
    )
    parts.append(
        _facts(
            [
                ("started", escape(fmt.local_time(t.get("started_at")))),
                ("duration", escape(fmt.secs(t.get("duration_ms")))),
                ("usage", escape(fmt.tokens_text(t.get("tokens")))),
                ("cost", escape(cost)),
                ("model", escape(f"{t.get('provider', '')} {t.get('model', '')}".strip() or "-")),
            ]
        )
    )
    if t.get("stop_reason"):
        parts.append(f'<div class="alert">stopped: {escape(str(t["stop_reason"]))}</div>')
    for error in t.get("errors") or []:
        parts.append(f'<div class="alert error">error: {escape(str(error))}</div>')
    for note in t.get("notes") or []:
        parts.append(f'<div class="alert">note: {escape(str(note))}</div>')
    inputs = t.get("inputs") or {}
    if len(inputs) > 1 or (inputs and "query" not in inputs):
        parts.append(f"<details><summary>Inputs</summary>{html_value(inputs)}</details>")
    return "<header>" + "".join(parts) + "</header>"


def _breakdown_table(factors: list[dict[str, Any]]) -> str:
    if not factors:
        return ""
    rows = "".join(
        f'<tr><td>{escape(str(f.get("signal", "?")))}</td><td class="num">'
        f"{escape(fmt.signed(float(f.get('delta') or 0.0), str(f.get('signal', ''))))}</td>"
        f"<td>{escape(str(f.get('detail') or ''))}</td></tr>"
        for f in factors
    )
    return f'<table><tr><th>signal</th><th class="num">delta</th><th>detail</th></tr>{rows}</table>'


def _calls_table(calls: list[dict[str, Any]]) -> str:
    rows = []
    for c in calls:
        notes = []
        if c.get("cached"):
            notes.append(f"cached ({c.get('cache_layer') or 'cache'})")
        if (c.get("attempts") or 0) > 1:
            notes.append(f"{c['attempts']} attempts")
        for fb in c.get("fallbacks") or []:
            notes.append(f"fallback from {fb.get('provider', '?')}: {fb.get('reason', '')}")
        if c.get("error"):
            notes.append(f"error: {c['error']}")
        rows.append(
            f"<tr><td>{escape(str(c.get('purpose', '')))}</td>"
            f"<td>{escape(str(c.get('provider', '')))} {escape(str(c.get('model', '')))}</td>"
            f'<td class="num">{escape(fmt.secs(c.get("duration_ms")))}</td>'
            f'<td class="num">{fmt.token_total(c.get("tokens"))}</td>'
            f'<td class="num">{escape(fmt.usd(c.get("cost_usd")))}</td>'
            f"<td>{escape('; '.join(notes))}</td></tr>"
        )
    head = (
        '<tr><th>call</th><th>model</th><th class="num">time</th><th class="num">tokens</th>'
        '<th class="num">cost</th><th>notes</th></tr>'
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _step(s: dict[str, Any], title: str) -> str:
    status = s.get("status")
    parts = [
        f'<div class="step {svg.status_class(status)}"><h4>{escape(title)} '
        f'<span class="muted">{escape(str(s.get("kind") or ""))}</span> {badge(status)}</h4>',
        _facts(
            [
                ("confidence", escape(fmt.conf(s.get("confidence")))),
                ("time", escape(fmt.secs(s.get("duration_ms")))),
                ("usage", escape(fmt.tokens_text(s.get("tokens")))),
                ("cost", escape(fmt.usd(s.get("cost_usd")))),
                ("calls", str(len(s.get("calls") or []))),
            ]
        ),
    ]
    if s.get("error"):
        why = "why" if status in ("skipped", "degraded") else "error"
        parts.append(
            f'<div class="alert{" error" if status == "failed" else ""}">'
            f"{why}: {escape(str(s['error']))}</div>"
        )
    for note in s.get("notes") or []:
        parts.append(f'<div class="alert">note: {escape(str(note))}</div>')
    factors = s.get("confidence_breakdown") or []
    if len(factors) > 1 or status == "degraded":
        parts.append(
            f"<details open><summary>Confidence breakdown</summary>{_breakdown_table(factors)}</details>"
        )
    if s.get("items"):
        for item in s["items"]:
            index = str(item.get("item_index", "?"))
            parts.append(
                f"<details><summary>item {escape(index)} · "
                f"{escape(str(item.get('status', '')))} · conf {escape(fmt.conf(item.get('confidence')))}"
                f"</summary>{_step(item, f'{title} #{index}')}</details>"
            )
    elif s.get("output") is not None:
        parts.append(html_value(s["output"]))
    prompt = "\n\n".join(p for p in (s.get("system") or "", s.get("prompt") or "") if p)
    if prompt:
        parts.append(f"<details><summary>Prompt</summary><pre>{escape(prompt)}</pre></details>")
    raw = s.get("raw_response") or next(
        (c.get("raw_response") for c in reversed(s.get("calls") or []) if c.get("raw_response")), ""
    )
    if raw:
        parts.append(f"<details><summary>Raw response</summary><pre>{escape(_pretty(raw))}</pre></details>")
    if s.get("calls"):
        parts.append(f"<details><summary>Model calls</summary>{_calls_table(s['calls'])}</details>")
    return "".join(parts) + "</div>"


def _pretty(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def _entries(t: dict[str, Any]) -> str:
    out = []
    for e in t.get("entries") or []:
        entry, proto = str(e.get("entry", "?")), str(e.get("protocol", "?"))
        title = entry if entry == proto else f"{entry} ({proto})"
        summary = f"{escape(title)} {badge(e.get('status'))} conf {escape(fmt.conf(e.get('confidence')))}"
        if e.get("status") not in ("skipped", "pending"):
            meets = "meets" if e.get("meets_threshold") else "below"
            summary += (
                f' <span class="muted">({meets} {float(e.get("min_confidence") or 0):.2f}) · '
                f"{escape(fmt.secs(e.get('duration_ms')))} · {escape(fmt.tokens_text(e.get('tokens')))} · "
                f"{escape(fmt.usd(e.get('cost_usd')))}</span>"
            )
        body = []
        if e.get("skip_reason"):
            body.append(f'<div class="alert">why skipped: {escape(str(e["skip_reason"]))}</div>')
        if e.get("answer"):
            body.append(f'<div class="answer">{escape(str(e["answer"]))}</div>')
        if e.get("confidence_breakdown"):
            body.append(
                "<details><summary>Confidence breakdown</summary>"
                f"{_breakdown_table(e['confidence_breakdown'])}</details>"
            )
        if e.get("inputs"):
            body.append(f"<details><summary>Inputs</summary>{html_value(e['inputs'])}</details>")
        body += [_step(s, str(s.get("step_id", "?"))) for s in e.get("steps") or []]
        out.append(
            f'<details class="entry" open id="entry-{escape(entry)}"><summary>{summary}</summary>'
            f"{''.join(body)}</details>"
        )
    return "".join(out) or '<p class="muted">No entries were recorded.</p>'


LEGEND = "".join(
    f'<span><i class="badge s-{s}"></i>{s}</span>'
    for s in ("ok", "degraded", "failed", "skipped", "cancelled")
)


def _graphs(t: dict[str, Any], registry: Registry | None) -> str:
    figures = []
    chain = entry_dag(t, registry)
    if chain is not None and chain.nodes:
        note = " (inferred from timing)" if chain.inferred else ""
        figures.append(f"<figure>{svg.dag(chain, 'chain')}<figcaption>entries{note}</figcaption></figure>")
    for i, e in enumerate(t.get("entries") or []):
        graph = step_dag(e, registry)
        if not graph.nodes:
            continue
        note = " (inferred from timing)" if graph.inferred else ""
        caption = f"{escape(str(e.get('entry', '?')))}{note}"
        figures.append(f"<figure>{svg.dag(graph, f'e{i}')}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="graphs">{"".join(figures)}</div>'


def render_page(trace: dict[str, Any], *, registry: Registry | None = None, back: str | None = None) -> str:
    """The report of a stored run (`StoreBackend.get`) as one HTML document. `registry`: the protocols
    and profiles, for the step graph (else it is inferred from timing); `back`: a link to the list
    of runs (served pages)."""
    t = trace
    answer = str(t.get("answer") or "").strip()
    body = [
        _header(t, back),
        "<section><h2>Answer</h2>",
        f'<div class="answer">{escape(answer)}</div>' if answer else '<p class="muted">No answer.</p>',
        "</section><section><h2>Confidence</h2>",
        svg.waterfall(t.get("confidence_breakdown") or [], t.get("confidence"), t.get("min_confidence")),
        f"<details><summary>Breakdown table</summary>{_breakdown_table(t.get('confidence_breakdown') or [])}"
        "</details></section>",
        "<section><h2>Timeline</h2>",
        f'<div class="legend">{LEGEND}<span><i class="call"></i>model call</span>'
        '<span><i class="call-cached"></i>cached call</span></div>',
        svg.gantt(t),
        "</section><section><h2>Step graph</h2>",
        _graphs(t, registry),
        "</section><section><h2>Entries and steps</h2>",
        _entries(t),
        "</section>",
        f"<footer>ReasonKit {escape(__version__)} · report made {escape(time.strftime('%Y-%m-%d %H:%M:%S'))}"
        " · this file loads nothing from the network</footer>",
    ]
    return document(f"ReasonKit run {t.get('run_id', '')}: {question(t)[:80]}", "".join(body))
