"""Inline SVG for the HTML report: the timeline (Gantt) of every step, item and model call, the
step and entry graphs, and the confidence breakdown as a waterfall. Colours come from the page's
CSS classes (`s-ok`, `s-degraded`, ...); every text goes through `html.escape`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from reasonkit.presentation import fmt
from reasonkit.viewer.graph import Dag, span

if TYPE_CHECKING:
    from reasonkit.presentation import CallView, FactorView, RunView, StepView

STATUSES = frozenset(
    ("ok", "degraded", "failed", "skipped", "cancelled", "running", "pending")  # steps
    + ("complete", "incomplete", "interrupted")  # entries and runs
)
LABEL_W, CHART_W, ROW_H, LANE_H = 190, 760, 20, 5


def status_class(status: Any) -> str:
    return f"s-{status}" if status in STATUSES else "s-other"


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}>{escape(text)}</text>'


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _tick(total_ms: float) -> float:
    raw = max(total_ms / 8, 0.001)
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def _call_bars(calls: list[CallView], start_ms: float) -> list[tuple[float, float, CallView, int]]:
    """(start, end, call, lane) per call. Calls carry no start time: a step's samples start with the
    step (one lane each), a repair call follows the call it repairs."""
    bars: list[tuple[float, float, CallView, int]] = []
    ends: dict[str, float] = {}
    lanes: dict[str, int] = {}
    for call in calls:
        purpose = call.purpose
        key = purpose.replace("repair of ", "") if purpose.startswith("repair of ") else purpose
        if purpose == "repair":
            key = "main"
        lane = lanes.setdefault(key, len(lanes))
        begin = ends.get(key, start_ms)
        end = begin + call.duration_ms
        ends[key] = end
        bars.append((begin, end, call, lane))
    return bars


@dataclass
class _Row:
    """One line of the timeline: an entry's span, or a step's (or item's) with its model calls."""

    label: str
    cls: str
    status: str
    start: float | None
    end: float | None
    calls: list[CallView] = field(default_factory=list)
    title: str = ""
    error: str | None = None


def _rows(run: RunView) -> list[_Row]:
    rows: list[_Row] = []
    for e in run.entries:
        start, end = span(e.steps)
        rows.append(_Row(e.entry, "entry", e.status, start, end))
        for s in e.steps:
            rows.append(_row(s, f"  {s.step_id}"))
            rows += [_row(it, f"    #{'?' if it.item_index is None else it.item_index}") for it in s.items]
    return rows


def _row(s: StepView, label: str) -> _Row:
    start, end = s.started_at, s.finished_at
    if start and not end:  # still running (a live run): up to now
        end = start + s.duration_ms / 1000 if s.duration_ms else time.time()
    calls = [] if s.items else list(s.calls)
    return _Row(label, "step", s.status, start, end, calls, f"{s.entry}.{s.step_id}", s.error)


def _calls(r: _Row, y: float, bar_h: int, start_ms: float, scale: float) -> list[str]:
    """The model calls of a step as thin bars under its own, one lane per sample."""
    out = []
    for begin, end, call, lane in _call_bars(r.calls, start_ms):
        cy = y + 3 + bar_h + 2 + lane * (LANE_H + 1)
        cw = max(1.0, (end - begin) * scale)
        kind = "call-err" if call.error else "call-cached" if call.cached else "call"
        ctip = (
            f"{call.purpose}: {fmt.secs(end - begin)}, {call.provider} {call.model}, "
            f"{fmt.tokens_text(call.tokens)}"
        )
        if call.error:
            ctip += f", error: {call.error}"
        out.append(
            f'<rect x="{LABEL_W + begin * scale:.1f}" y="{cy}" width="{cw:.1f}" height="{LANE_H}" '
            f'class="{kind}"><title>{escape(ctip)}</title></rect>'
        )
    return out


def _bar(r: _Row, y: float, t0: float, scale: float) -> list[str]:
    """A row's bar (entry, step or item) from its start to its end, then its calls."""
    if not (r.start and r.end):
        return [_text(LABEL_W + 4, y + 14, f"{r.status} (did not run)", "muted")] if r.status else []
    x0 = LABEL_W + (r.start - t0) * 1000 * scale
    w = max(1.5, (r.end - r.start) * 1000 * scale)
    tip = f"{r.title or r.label.strip()}: {r.status}, {fmt.secs(w / scale)}, from +{(r.start - t0):.3f} s"
    if r.error:
        tip += f" ({r.error})"
    bar_h = 14 if r.cls == "step" else 16
    return [
        f'<rect x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{bar_h}" rx="2" '
        f'class="bar {status_class(r.status)} bar-{r.cls}"><title>{escape(tip)}</title></rect>',
        *_calls(r, y, bar_h, (r.start - t0) * 1000, scale),
    ]


def gantt(run: RunView) -> str:
    """Every entry, step, for_each item and model call on one time axis."""
    rows = _rows(run)
    starts = [r.start for r in rows if r.start]
    t0 = run.started_at or (min(starts) if starts else 0.0)
    ends = [r.end for r in rows if r.end]
    total_ms = max(run.duration_ms or 0.0, (max(ends) - t0) * 1000 if ends else 0.0, 1.0)
    scale = CHART_W / total_ms
    out: list[str] = []
    y = 28
    for r in rows:
        lanes = 1 + max((lane for *_, lane in _call_bars(r.calls, 0.0)), default=-1)
        out.append(_text(4, y + 14, _short(r.label, 30), "lbl-entry" if r.cls == "entry" else "lbl"))
        out += _bar(r, y, t0, scale)
        y += ROW_H + lanes * (LANE_H + 1)
    tick = _tick(total_ms)
    axis = [f'<line x1="{LABEL_W}" y1="22" x2="{LABEL_W + CHART_W}" y2="22" class="axis"/>']
    n = 0
    while n * tick <= total_ms + 1e-9:
        x = LABEL_W + n * tick * scale
        axis.append(f'<line x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{y}" class="grid"/>')
        axis.append(_text(x, 14, fmt.secs(n * tick), "tick", "middle"))
        n += 1
    width = LABEL_W + CHART_W + 30
    return (
        f'<svg class="gantt" viewBox="0 0 {width} {y + 6}" width="100%" role="img" '
        f'aria-label="timeline of the run">{"".join(axis)}{"".join(out)}</svg>'
    )


def dag(graph: Dag, marker: str) -> str:
    """A left-to-right drawing of a graph (columns by depth); `marker`: an id unique in the page."""
    depth = graph.depth()
    columns: dict[int, list[str]] = {}
    for node in graph.nodes:
        columns.setdefault(depth.get(node, 0), []).append(node)
    box_w, box_h, gap_x, gap_y = 140, 30, 50, 12
    pos = {}
    for col, nodes in columns.items():
        for i, node in enumerate(nodes):
            pos[node] = (10 + col * (box_w + gap_x), 10 + i * (box_h + gap_y))
    width = 20 + (max(columns, default=0) + 1) * (box_w + gap_x) - gap_x
    height = 20 + max((len(n) for n in columns.values()), default=1) * (box_h + gap_y) - gap_y
    mid = f"arrow-{escape(marker)}"
    parts = [
        f'<defs><marker id="{mid}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>'
    ]
    for src, dst in graph.edges():
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        sx, sy, ex, ey = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
        cx = (sx + ex) / 2
        parts.append(
            f'<path d="M{sx},{sy} C{cx},{sy} {cx},{ey} {ex},{ey}" class="edge" marker-end="url(#{mid})"/>'
        )
    for node in graph.nodes:
        x, y = pos[node]
        status = graph.status.get(node, "")
        parts.append(
            f"<g><title>{escape(f'{node}: {status}')}</title>"
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="5" '
            f'class="node {status_class(status)}"/>'
            f"{_text(x + box_w / 2, y + 19, _short(node, 20), 'node-label', 'middle')}</g>"
        )
    return (
        f'<svg class="dag" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="step graph">{"".join(parts)}</svg>'
    )


def waterfall(factors: list[FactorView], value: float | None, threshold: float | None) -> str:
    """The breakdown as bars from the running sum to the running sum plus each delta, then the
    final confidence, with the threshold as a dashed line."""
    running, rows = 0.0, []
    for f in factors:
        rows.append((f.signal, running, running + f.delta, f.delta, f.detail))
        running += f.delta
    final = running if value is None else value
    lo = min([0.0, *(min(a, b) for _, a, b, _, _ in rows)])
    hi = max([1.0, *(max(a, b) for _, a, b, _, _ in rows), final])
    label_w, chart_w, row_h = 220, 520, 24
    scale = chart_w / (hi - lo)

    def x(v: float) -> float:
        return label_w + (v - lo) * scale

    parts = []
    y = 8
    for signal, a, b, delta, detail in rows:
        cls = "wf-base" if signal in ("weighted_mean", "model") else "wf-up" if delta >= 0 else "wf-down"
        left, w = x(min(a, b)), max(1.5, abs(b - a) * scale)
        tip = f"{signal}: {fmt.signed(delta, signal)}" + (f" ({detail})" if detail else "")
        parts.append(_text(4, y + 16, _short(signal, 34), "lbl"))
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 4}" width="{w:.1f}" height="16" class="{cls}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        parts.append(_text(left + w + 4, y + 16, fmt.signed(delta, signal), "tick"))
        y += row_h
    parts.append(_text(4, y + 16, "confidence", "lbl-entry"))
    parts.append(
        f'<rect x="{x(min(0.0, final)):.1f}" y="{y + 4}" width="{max(1.5, abs(final) * scale):.1f}" '
        f'height="16" class="wf-total"><title>confidence {final:.3f}</title></rect>'
    )
    parts.append(_text(x(max(0.0, final)) + 4, y + 16, f"{final:.3f}", "tick"))
    y += row_h
    bottom = y
    if threshold is not None:
        tx = x(float(threshold))
        parts.append(f'<line x1="{tx:.1f}" y1="2" x2="{tx:.1f}" y2="{y + 2}" class="threshold"/>')
        parts.append(_text(tx, y + 16, f"threshold {float(threshold):.2f}", "tick", "middle"))
        y += 20
    for v in (0.0, 0.5, 1.0):  # the scale always spans 0..1
        parts.append(f'<line x1="{x(v):.1f}" y1="2" x2="{x(v):.1f}" y2="{bottom}" class="grid"/>')
    return (
        f'<svg class="waterfall" viewBox="0 0 {label_w + chart_w + 60} {y + 4}" width="100%" role="img" '
        f'aria-label="confidence breakdown">{"".join(parts)}</svg>'
    )
