"""The view of a run: the same from a `RunResult` as from its stored trace, tolerant of traces from
other versions, and what the surfaces used to tell apart (calibration, budget notes) shown on all."""

from __future__ import annotations

import json
import re

from reasonkit.cli.run_commands import render_tree
from reasonkit.engine.result import RunResult
from reasonkit.presentation import RunView, fmt, run_view
from reasonkit.render import render_markdown, render_text
from reasonkit.server.mcp.rendering import tool_result
from reasonkit.viewer import render_full, render_page
from tests.presentation.test_surfaces import base_run


def every_surface(result: RunResult) -> dict[str, str]:
    trace = result.trace()
    tool = tool_result(result)
    return {
        "text": render_text(result),
        "markdown": render_markdown(result),
        "mcp": tool.content[0].text,  # type: ignore[union-attr]
        "page": re.sub(r"<[^>]+>", "", render_page(trace)),
        "terminal": render_full(trace),
        "tree": render_tree(trace),
    }


def test_a_result_and_its_stored_trace_give_the_same_view():
    result = base_run()
    stored = json.loads(json.dumps(result.trace()))  # as the store gives it back
    assert run_view(result) == run_view(stored) == RunView.of(stored)
    view = run_view(result)
    assert run_view(view) is view
    assert view.entries[0].steps[0].calls[0].tokens.total == 23


def test_a_trace_from_another_version_makes_a_view_of_what_is_there():
    view = run_view({"run_id": "old", "confidence": None, "tokens": None, "entries": [{"steps": [{}]}]})
    assert (view.kind, view.status, view.confidence, view.tokens.total) == ("run", "?", None, 0)
    assert view.price_known and view.all_notes == [] and view.question == "run "
    step = view.entries[0].steps[0]
    assert (view.entries[0].entry, step.step_id, step.status, step.duration_ms) == ("?", "?", "?", None)


def test_a_calibrated_confidence_shows_its_raw_value_on_every_surface():
    """It used to show in `rk think` and the MCP text only, not on the page or in `rk runs show`."""
    result = base_run()
    result.confidence, result.confidence_raw = 0.588, 0.744
    for surface, text in every_surface(result).items():
        assert "0.59, calibrated from 0.74" in text.replace("0.59**", "0.59"), surface
    result.confidence_raw = None
    for surface, text in every_surface(result).items():
        assert "calibrated" not in text, surface


def test_notes_and_the_budget_note_show_on_every_surface():
    """The budget note (why a cost budget is not enforced) used to show in `rk think` only, and
    `rk runs show` showed no notes at all."""
    result = base_run()
    result.notes, result.budget_note = ["small-model caps applied"], "prices unknown: budget not enforced"
    for surface, text in every_surface(result).items():
        assert "small-model caps applied" in text, surface
        assert "prices unknown: budget not enforced" in text, surface


def test_usage_reads_the_same_on_the_page_in_the_terminal_and_in_rk_runs_show():
    """`rk runs show` wrote its own token line (cache counts always, no `tokens` word)."""
    result = base_run()
    usage = fmt.tokens_text(run_view(result).tokens)
    assert usage == "83 tokens (41 in, 42 out)"
    surfaces = every_surface(result)
    for surface in ("page", "terminal", "tree"):
        assert usage in surfaces[surface], surface
    assert f"  usage       {usage}   cost $0.0040" in surfaces["tree"]


def test_rk_runs_show_and_its_full_view_share_their_head():
    trace = base_run().trace()
    rows = 1 + len(fmt.header_rows(run_view(trace)))
    assert render_tree(trace).splitlines()[:rows] == render_full(trace, width=200).splitlines()[:rows]


def test_the_page_shows_the_facts_the_terminal_views_show():
    """The page's second line of facts is `fmt.run_facts`, the end of the terminal views' head (it
    used to leave out when the run finished)."""
    from html import escape

    result = base_run()
    view = run_view(result)
    html = render_page(result.trace())
    for name, text in fmt.run_facts(view):
        assert f"<span>{name} <b>{escape(text)}</b></span>" in html
    assert fmt.local_time(view.finished_at) in html
