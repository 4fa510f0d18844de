"""Human-readable renderings of a RunResult (shared by the CLI and the MCP server's text content)."""

from __future__ import annotations

import json

from reasonkit.engine.result import RunResult

UNKNOWN_PRICE = "price unknown for some models: cost not counted"


def cost_text(cost_usd: float, price_known: bool) -> str:
    """The cost as every rendering shows it, with the one wording for unknown prices."""
    return f"${cost_usd:.4f}" + ("" if price_known else f" ({UNKNOWN_PRICE})")


def _calibrated(result: RunResult) -> str:
    raw = result.confidence_raw
    return "" if raw is None else f", calibrated from {raw:.2f}"


def _notes(result: RunResult) -> list[str]:
    return [*result.notes, *([result.budget_note] if result.budget_note else [])]


def breakdown_lines(result: RunResult) -> list[str]:
    lines = []
    for f in result.confidence_breakdown:
        delta = round(f.delta, 3) + 0.0  # a zero shows as +0.000, never +-0.000
        sign = "" if f.signal == "weighted_mean" else ("+" if delta >= 0 else "")
        lines.append(f"- {f.signal}: {sign}{delta:.3f} ({f.detail})")
    return lines


def render_markdown(result: RunResult, include_steps: bool = True) -> str:
    status = (
        "complete"
        if result.complete
        else f"{result.status}: {result.stop_reason or 'some steps did not finish'}"
    )
    verdict = "meets" if result.meets_threshold else "below"
    out = [
        result.answer.strip(),
        "",
        f"**Confidence {result.confidence:.2f}**{_calibrated(result)} ({verdict} the "
        f"{result.min_confidence:.2f} threshold "
        f"of {result.kind} `{result.name}`; {status}"
        + (f"; answer from {result.answer_tool})" if result.answer_tool else ")"),
        "",
        *breakdown_lines(result),
    ]
    if include_steps:
        out += ["", "| entry | status | confidence |", "|---|---|---|"]
        for e in result.entries:
            c = "" if e.confidence is None else f"{e.confidence:.2f}"
            extra = f" ({e.skip_reason})" if e.skip_reason else ""
            out.append(f"| {e.entry} | {e.status}{extra} | {c} |")
    if result.notes or result.budget_note:
        out += ["", *(f"- note: {note}" for note in _notes(result))]
    cost = cost_text(result.cost_usd, result.price_known)
    out += [
        "",
        f"run `{result.run_id}` · {result.tokens.input} in / {result.tokens.output} out tokens · "
        f"{cost} · {result.duration_ms / 1000:.1f}s",
    ]
    return "\n".join(out)


def render_text(result: RunResult) -> str:
    status = (
        "complete"
        if result.complete
        else f"{result.status.upper()} ({result.stop_reason or 'some steps did not finish'})"
    )
    verdict = "meets" if result.meets_threshold else "BELOW"
    lines = [
        f"Answer (from {result.answer_tool}):" if result.answer_tool else "Answer:",
        result.answer.strip(),
        "",
        f"Confidence: {result.confidence:.2f}{_calibrated(result)} ({verdict} threshold "
        f"{result.min_confidence:.2f}) - {status}",
        *breakdown_lines(result),
        "",
        "Entries:",
    ]
    for e in result.entries:
        c = "-" if e.confidence is None else f"{e.confidence:.2f}"
        lines.append(
            f"  {e.entry:<20} {e.status:<10} {c}" + (f"  ({e.skip_reason})" if e.skip_reason else "")
        )
        for s in e.steps:
            sc = "-" if s.confidence is None else f"{s.confidence:.2f}"
            items = f" x{len(s.items)}" if s.items else ""
            lines.append(
                f"    {s.step_id + items:<22} {s.status:<10} {sc}" + (f"  {s.error}" if s.error else "")
            )
    lines += [f"Note: {note}" for note in _notes(result)]
    lines.append(
        f"run {result.run_id}: {result.tokens.input} input + {result.tokens.output} output tokens, "
        f"{cost_text(result.cost_usd, result.price_known)}, {result.duration_ms / 1000:.1f}s"
    )
    return "\n".join(lines)


def render_result(result: RunResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.summary(), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return render_markdown(result)
    return render_text(result)
