"""Human-readable renderings of a run (shared by `rk think` and the MCP server's text content):
short text and markdown, read from the one view of a run (reasonkit/presentation)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reasonkit.presentation import RunView, fmt, run_view

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult

__all__ = ["breakdown_lines", "render_markdown", "render_result", "render_text"]


def breakdown_lines(view: RunView) -> list[str]:
    return [f"- {f.signal}: {fmt.signed(f.delta, f.signal)} ({f.detail})" for f in view.confidence_breakdown]


def render_markdown(result: RunResult | RunView | dict[str, Any], include_steps: bool = True) -> str:
    v = run_view(result)
    status = "complete" if v.complete else f"{v.status}: {v.stop_reason or 'some steps did not finish'}"
    verdict = "meets" if v.meets_threshold else "below"
    out = [
        v.answer.strip(),
        "",
        f"**Confidence {fmt.conf(v.confidence)}**{fmt.calibrated(v.confidence_raw)} ({verdict} the "
        f"{v.min_confidence:.2f} threshold of {v.kind} `{v.name}`; {status}"
        + (f"; answer from {v.answer_tool})" if v.answer_tool else ")"),
        "",
        *breakdown_lines(v),
    ]
    if include_steps:
        out += ["", "| entry | status | confidence |", "|---|---|---|"]
        for e in v.entries:
            c = "" if e.confidence is None else fmt.conf(e.confidence)
            extra = f" ({e.skip_reason})" if e.skip_reason else ""
            out.append(f"| {e.entry} | {e.status}{extra} | {c} |")
    if v.all_notes:
        out += ["", *(f"- note: {note}" for note in v.all_notes)]
    out += [
        "",
        f"run `{v.run_id}` · {v.tokens.input} in / {v.tokens.output} out tokens · "
        f"{fmt.cost_text(v.cost_usd, v.price_known)} · {(v.duration_ms or 0) / 1000:.1f}s",
    ]
    return "\n".join(out)


def render_text(result: RunResult | RunView | dict[str, Any]) -> str:
    v = run_view(result)
    status = (
        "complete" if v.complete else f"{v.status.upper()} ({v.stop_reason or 'some steps did not finish'})"
    )
    verdict = "meets" if v.meets_threshold else "BELOW"
    lines = [
        f"Answer (from {v.answer_tool}):" if v.answer_tool else "Answer:",
        v.answer.strip(),
        "",
        f"Confidence: {fmt.conf(v.confidence)}{fmt.calibrated(v.confidence_raw)} "
        f"({verdict} threshold {v.min_confidence:.2f}) - {status}",
        *breakdown_lines(v),
        "",
        "Entries:",
    ]
    for e in v.entries:
        lines.append(
            f"  {e.entry:<20} {e.status:<10} {fmt.conf(e.confidence)}"
            + (f"  ({e.skip_reason})" if e.skip_reason else "")
        )
        for s in e.steps:
            items = f" x{len(s.items)}" if s.items else ""
            lines.append(
                f"    {s.step_id + items:<22} {s.status:<10} {fmt.conf(s.confidence)}"
                + (f"  {s.error}" if s.error else "")
            )
    lines += [f"Note: {note}" for note in v.all_notes]
    lines.append(
        f"run {v.run_id}: {v.tokens.input} input + {v.tokens.output} output tokens, "
        f"{fmt.cost_text(v.cost_usd, v.price_known)}, {(v.duration_ms or 0) / 1000:.1f}s"
    )
    return "\n".join(lines)


def render_result(result: RunResult, fmt: str) -> str:
    """`rk think`'s output in the format asked for (json: the summary the MCP tools report too)."""
    if fmt == "json":
        return json.dumps(result.summary(), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return render_markdown(result)
    return render_text(result)
