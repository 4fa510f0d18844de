"""`rk runs view`: a saved run as one self-contained HTML report (reasonkit/viewer/page.py).
Registered on the `rk runs` group by reasonkit/cli/__init__.py. (Its terminal twin,
`rk runs show --full`, is an option of `rk runs show` in reasonkit/cli/run_commands.py.)

Only click is imported at module level (see reasonkit/cli/__init__.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reasonkit.cli.common import warn, write_atomically
from reasonkit.cli.run_commands import _data_dir_option, _err, _output_option, _saved_trace

if TYPE_CHECKING:
    from reasonkit.protocol.loader import Registry


def _registry(ctx: click.Context) -> Registry | None:
    """The protocols and profiles (built-in and the configured directories), for the step graph;
    None when they cannot be loaded (the graph is then inferred from timing)."""
    from reasonkit.config import load_settings
    from reasonkit.errors import ReasonKitError
    from reasonkit.protocol.loader import load_registry

    config = ctx.obj.get("config") if isinstance(ctx.obj, dict) else None
    try:
        settings = load_settings(config)
        return load_registry([Path(d) for d in settings.protocols.dirs])
    except ReasonKitError:
        return None


@click.command("view")
@_data_dir_option
@click.argument("run_id")
@_output_option(
    "Write the report to this file ('-': stdout). Default: reasonkit-run-<id>.html in the "
    "temporary directory."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in the default web browser.")
@click.pass_context
def runs_view(ctx: click.Context, run_id: str, output: Path | None, open_browser: bool) -> None:
    """A run as one self-contained HTML report: question, answer, confidence against its
    threshold, a timeline of every step and model call, the step graph, the confidence
    waterfall, and each step's output with its prompt and raw response. The file loads nothing
    from the network.

    RUN_ID may be a unique prefix of the id."""
    rid, trace = _saved_trace(ctx, run_id)
    from reasonkit.viewer import render_page

    html = render_page(trace, registry=_registry(ctx))
    if output is not None and str(output) == "-":
        if open_browser:
            _err("--open needs a file: give --output FILE.html (not '-')", 2)
        click.echo(html, nl=False)
        return
    path = (output or Path(tempfile.gettempdir()) / f"reasonkit-run-{rid}.html").expanduser().resolve()
    write_atomically(path, html)
    click.echo(f"run {rid} report written to {path}", err=True)
    if open_browser:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            warn(f"no web browser found to open it: open {path} yourself")
