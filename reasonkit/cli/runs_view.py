"""`rk runs view`: a saved run as one self-contained HTML report (reasonkit/viewer/page.py).
Registered on the `rk runs` group by reasonkit/cli/__init__.py. (Its terminal twin,
`rk runs show --full`, is an option of `rk runs show` in reasonkit/cli/run_commands.py.)

Only click is imported at module level (see reasonkit/cli/__init__.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reasonkit.cli.common import EXIT_FAILED, fail, warn, write_atomically
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


def _private_report(rid: str, html: str) -> Path:
    """A new file in the shared temporary directory that only this user can read (0600), with a
    random name, created exclusively: a name another user can guess, or a symlink planted there,
    can neither be read nor make us write somewhere else (tempfile.mkstemp: O_CREAT | O_EXCL)."""
    import os

    try:
        fd, name = tempfile.mkstemp(prefix=f"reasonkit-run-{rid}-", suffix=".html")
    except OSError as exc:
        fail(f"cannot create a report file in {tempfile.gettempdir()}: {exc.strerror or exc}", EXIT_FAILED)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        fail(f"cannot write {name}: {exc.strerror or exc}", EXIT_FAILED)
    return Path(name)


@click.command("view")
@_data_dir_option
@click.argument("run_id")
@_output_option(
    "Write the report to this file ('-': stdout). Default: a new private file "
    "reasonkit-run-<id>-<random>.html in the temporary directory."
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
    if output is None:
        path = _private_report(rid, html)
    else:
        path = output.expanduser().resolve()
        write_atomically(path, html)
    click.echo(f"run {rid} report written to {path}", err=True)
    if open_browser:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            warn(f"no web browser found to open it: open {path} yourself")
