"""Tool results: a run (or a stored trace, or a run in progress) as MCP structured content plus a
short markdown text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types

if TYPE_CHECKING:  # the engine is imported by the first tools/call, not at start-up
    from reasonkit.engine import RunResult
    from reasonkit.live_runs import LiveRun


def text_result(
    text: str, structured: dict[str, Any] | None = None, is_error: bool = False
) -> types.CallToolResult:
    content = [types.TextContent(type="text", text=text)]
    return types.CallToolResult(content=content, structured_content=structured, is_error=is_error)


def error_result(message: str) -> types.CallToolResult:
    return text_result(f"ReasonKit error: {message}", None, is_error=True)


def tool_result(result: RunResult, link: str | None = None) -> types.CallToolResult:
    """`link`: the address of the run's page (reasonkit/server/run_pages.py), when it is served."""
    from reasonkit.presentation import run_view
    from reasonkit.render import render_markdown

    view = run_view(result)
    summary = result.summary()
    text = render_markdown(view)
    if link:
        summary["run_page"] = link
        text += f"\n\nThe whole reasoning, with a timeline: {link}"
    if view.status == "failed":
        errors = "; ".join(view.errors[:5]) or view.stop_reason or "no step finished"
        message = f"ReasonKit error: the {view.kind} `{view.name}` failed: {errors}\n\n{text}"
        return text_result(message, summary, is_error=True)
    return text_result(text, summary)


def summary_from_trace(trace: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(structured summary, markdown) of a stored trace; a trace from another version shows what is
    there."""
    from reasonkit.engine import RunResult
    from reasonkit.engine.result import RUN_STATUSES
    from reasonkit.render import render_markdown

    status = trace.get("status", "")
    try:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        result = RunResult.model_validate(trace)
        summary, text = result.summary(), render_markdown(result)
        if status == "interrupted":
            reason = trace.get("stop_reason") or "the server stopped before it finished"
            text = f"**Interrupted run** ({reason}).\n\n{text}"
        return summary, text
    except Exception:  # noqa: BLE001 - a trace from another version: show what is there
        summary = {
            "run_id": str(trace.get("run_id", "")),
            "status": str(status),
            "complete": bool(trace.get("complete", False)),
            "answer": str(trace.get("answer", "")),
            "confidence": float(trace.get("confidence") or 0.0),
            "meets_threshold": bool(trace.get("meets_threshold", False)),
        }
        return summary, f"{summary['answer']}\n\nrun `{summary['run_id']}`: {status}"


def _running(live: LiveRun, message: str) -> dict[str, Any]:
    """The structured content of a run still going: its id, what it runs, its progress."""
    result = live.result
    return {
        "run_id": result.run_id,
        "status": "running",
        "complete": False,
        result.kind: result.name,
        "progress": live.progress(),
        "message": message,
    }


def running_result(
    live: LiveRun, message: str = "Still running; call run_result again later."
) -> types.CallToolResult:
    result = live.result
    structured = _running(live, message)
    progress = structured["progress"]
    total = f"/{progress['total']}" if progress["total"] else ""
    last = f", last: {progress['last']}" if progress["last"] else ""
    text = (
        f"Run `{result.run_id}` ({result.kind} `{result.name}`) is still running: {progress['done']}{total} "
        f"steps done after {progress['elapsed_s']:g} s{last}. Call `run_result` again later."
    )
    return text_result(text, structured)


def background_started(live: LiveRun, tool: str, seconds: float) -> types.CallToolResult:
    run_id = live.result.run_id
    message = f"Started in the background. Call run_result with run_id {run_id} to fetch the result."
    text = (
        f"Started `{tool}` in the background as run `{run_id}`. Call `run_result` with this "
        f"run_id to fetch the result (it keeps running for up to {seconds:g} s)."
    )
    return text_result(text, _running(live, message))
