"""The HTML list of recent runs (`/runs`): a filter form (tool or profile, status) and a table of
runs, newest first, each linking to its report. Rows are `StoreBackend.list()` rows."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from reasonkit.engine.result import RUN_STATUSES
from reasonkit.presentation import fmt
from reasonkit.viewer.page import badge, document

BELOW = ' <span class="muted">below</span>'


def _options(values: list[str], selected: str | None, empty: str) -> str:
    out = [f'<option value="">{escape(empty)}</option>']
    for v in values:
        sel = " selected" if v == selected else ""
        out.append(f'<option value="{escape(v)}"{sel}>{escape(v)}</option>')
    return "".join(out)


def render_index(
    rows: list[dict[str, Any]],
    *,
    tool: str | None = None,
    status: str | None = None,
    limit: int = 50,
    names: list[str] | None = None,
    link: str = "runs/",
) -> str:
    """The list page. `names`: the tools and profiles offered in the filter (the current `tool`
    is always offered); `link`: the prefix of a run's report URL (relative to the page)."""
    choices = sorted({*(names or []), *([tool] if tool else [])})
    form = (
        '<form class="filters" method="get">'
        f'<label>tool or profile<select name="tool">{_options(choices, tool, "any")}</select></label>'
        f'<label>status<select name="status">{_options(list(RUN_STATUSES), status, "any")}</select></label>'
        f'<label>how many<input type="number" name="limit" min="1" max="1000" value="{int(limit)}"></label>'
        '<button type="submit">Show</button></form>'
    )
    body_rows = []
    for r in rows:
        run_id = str(r.get("run_id", ""))
        what = fmt.target(str(r.get("kind", "")), str(r.get("name", "")))
        body_rows.append(
            f'<tr><td><a href="{escape(link + quote(run_id, safe=""))}">'
            f"<code>{escape(run_id)}</code></a></td>"
            f"<td>{escape(fmt.local_time(r.get('started_at')))}</td><td>{escape(what)}</td>"
            f"<td>{badge(r.get('status'))}</td>"
            f'<td class="num">{escape(fmt.conf(r.get("confidence")))}'
            f"{'' if r.get('meets_threshold') else BELOW}</td>"
            f'<td class="num">{escape(fmt.secs(r.get("duration_ms")))}</td>'
            f'<td class="num">{int(r.get("tokens_total") or 0)}</td>'
            f'<td class="num">{escape(fmt.usd(r.get("cost_usd")))}</td></tr>'
        )
    head = (
        "<tr><th>run</th><th>started</th><th>tool / profile</th><th>status</th>"
        '<th class="num">confidence</th>'
        '<th class="num">time</th><th class="num">tokens</th><th class="num">cost</th></tr>'
    )
    table = (
        f"<table>{head}{''.join(body_rows)}</table>" if body_rows else '<p class="muted">No runs match.</p>'
    )
    return document("ReasonKit runs", f"<h1>Recent runs</h1>{form}{table}")
