"""`rk runs`: list, show, export and prune the runs saved in the run store.

Only click and the presentation helpers (reasonkit/presentation: standard library only) are imported
at module level: the store (sqlite3) and the settings are imported inside the commands, so
`rk --version` stays fast. A run is shown from its one view (`RunView`), as every other surface
shows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reasonkit.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    echo_untrusted,
    fail,
    load_settings,
    write_atomically,
)
from reasonkit.presentation import fmt as show
from reasonkit.presentation import run_view

if TYPE_CHECKING:
    from reasonkit.presentation import EntryView, FactorView, RunView, StepView

# The run statuses, spelled out here (not imported from the engine) so `rk runs --help` stays fast;
# tests/cli check that they equal reasonkit.engine.result.RUN_STATUSES.
STATUS_CHOICES = ("running", "complete", "incomplete", "cancelled", "failed", "interrupted")


def _err(message: str, code: int = EXIT_FAILED) -> NoReturn:
    fail(message, code)


def _db_path(ctx: click.Context) -> Path:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    data_dir = obj.get("runs_data_dir") or obj.get("data_dir")
    if data_dir is None:
        data_dir = load_settings(ctx).data_dir()
    return Path(data_dir).expanduser() / "runs.db"


def _shared_store(ctx: click.Context):
    """The PostgreSQL store when `[storage] url` is set and no --data-dir was given, else None."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    if obj.get("runs_data_dir"):
        return None
    from reasonkit.errors import StoreError
    from reasonkit.store.factory import database_url, open_store

    settings = load_settings(ctx)
    try:
        if database_url(settings) is None:
            return None
        store = open_store(settings)
    except StoreError as exc:
        _err(str(exc))
    ctx.call_on_close(store.close)
    return store


def _open(ctx: click.Context, must_exist: bool = True):
    """The store, or None when no database exists yet (nothing recorded: do not create one)."""
    shared = _shared_store(ctx)
    if shared is not None:
        return shared
    path = _db_path(ctx)
    if must_exist and not path.exists():
        return None
    from reasonkit.errors import StoreError
    from reasonkit.store import SqliteRunStore

    try:
        store = SqliteRunStore(path)
    except StoreError as exc:
        _err(str(exc))
    except OSError as exc:
        _err(f"cannot open the run database {path}: {exc}")
    ctx.call_on_close(store.close)
    return store


def _recover(store) -> None:
    """Mark runs whose process died as interrupted, so listings tell the truth (best effort)."""
    from reasonkit.errors import StoreError

    try:
        store.mark_interrupted()
    except StoreError:
        pass


def _resolve(ctx: click.Context, run_id: str):
    """The store and the one run id `run_id` (a unique prefix) names; exits 1 otherwise."""
    store = _open(ctx)
    if store is None:
        _err(f"no run '{run_id}': no runs recorded yet in {_db_path(ctx)}")
    _recover(store)
    ids = store.resolve(run_id.strip())
    if not ids:
        _err(f"no run '{run_id}' in {store.path} (see `rk runs list`)")
    if len(ids) > 1:
        more = "" if len(ids) < 10 else ", ..."
        _err(
            f"run id prefix '{run_id}' is ambiguous: it matches {', '.join(ids)}{more}; give more characters"
        )
    return store, ids[0]


def _saved_trace(ctx: click.Context, run_id: str) -> tuple[str, dict[str, Any]]:
    """(run id, stored trace) of the run `run_id` names, for show, export and view; exits 1 when
    there is none."""
    store, rid = _resolve(ctx, run_id)
    trace = store.get(rid)
    if trace is None:
        _err(f"run '{rid}' has no saved trace")
    return rid, trace


_DATA_DIR_HELP = (
    "Data directory holding runs.db "
    "(default: REASONKIT_DATA_DIR, [storage] data_dir, or the per-user data directory)."
)


def _set_data_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        ctx.ensure_object(dict)
        ctx.obj["runs_data_dir"] = value
    return value


def _data_dir_option(f):
    """`--data-dir` is accepted on the group (`rk runs --data-dir D list`) and on each command
    (`rk runs list --data-dir D`)."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        is_eager=True,
        callback=_set_data_dir,
        help=_DATA_DIR_HELP,
    )(f)


@click.group()
@_data_dir_option
@click.pass_context
def runs(ctx: click.Context) -> None:
    """List, show, export and prune saved runs."""
    ctx.ensure_object(dict)


@runs.command("list")
@_data_dir_option
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(1, None),
    default=50,
    show_default=True,
    help="How many runs (newest first).",
)
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only runs with this status.")
@click.option("--name", help="Only runs of this tool or profile (or kind: protocol, profile).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def runs_list(ctx: click.Context, limit: int, status: str | None, name: str | None, fmt: str) -> None:
    """Recent runs: id, start time, tool or profile, status, confidence."""
    store = _open(ctx)
    rows: list[dict[str, Any]] = []
    if store is not None:
        _recover(store)
        rows = store.list(limit=limit, status=status, kind_or_name=name)
    if fmt == "json":
        for r in rows:
            r["started"] = show.iso_time(r["started_at"])
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        where = _db_path(ctx)
        click.echo(
            "no runs" + (" match" if store is not None and (status or name) else f" recorded yet in {where}"),
            err=True,
        )
        return
    click.echo(f"{'RUN ID':<16}  {'STARTED':<19}  {'TOOL / PROFILE':<24}  {'STATUS':<11}  CONF")
    for r in rows:
        echo_untrusted(
            f"{r['run_id']:<16}  {show.local_time(r['started_at']):<19}  "
            f"{show.target(r['kind'], r['name']):<24}  {r['status']:<11}  {show.conf(r['confidence'])}"
        )


def _step_lines(s: StepView, indent: str, label: str) -> list[str]:
    line = f"{indent}{label}  {s.status}  conf {show.conf(s.confidence)}  {show.secs(s.duration_ms)}"
    return [line, *([f"{indent}    error: {s.error}"] if s.error else [])]


def _entry_lines(e: EntryView) -> list[str]:
    head = f"  {show.entry_title(e.entry, e.protocol)}  {e.status}  conf {show.conf(e.confidence)}"
    if e.ran:
        head += f"  meets threshold: {'yes' if e.meets_threshold else 'no'}  {show.secs(e.duration_ms)}"
    lines = [head, *([f"      skipped: {e.skip_reason}"] if e.skip_reason else [])]
    for s in e.steps:
        lines += _step_lines(s, "    ", s.step_id)
        for it in s.items:
            lines += _step_lines(it, "        ", f"item {it.item_index}")
    if e.confidence_breakdown:
        lines += ["    breakdown", *_breakdown(e.confidence_breakdown, "      ")]
    return lines


def _breakdown(factors: list[FactorView], indent: str) -> list[str]:
    return [
        f"{indent}{f.signal}: {show.signed(f.delta, f.signal)}" + (f" ({f.detail})" if f.detail else "")
        for f in factors
    ]


def _input_line(name: str, value: Any) -> str:
    text = " ".join((value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).split())
    return f"  input {name}: {text[:200]}{'...' if len(text) > 200 else ''}"


def render_tree(run: RunView | dict[str, Any]) -> str:
    """A run (its view, or a stored trace) as a readable tree (used by `rk runs show`): the head
    `rk runs show --full` has too (inputs shortened), then the outline of entries and steps."""
    v = run_view(run)
    lines = [f"run {v.run_id}  {v.kind} {v.name}"]
    lines += [f"  {name:<12}{value}" for name, value in show.header_rows(v)]
    lines += [_input_line(k, value) for k, value in v.inputs.items()]
    lines += [f"  error: {e}" for e in v.errors] + [f"  note: {n}" for n in v.all_notes]
    lines += ["", "entries"]
    for e in v.entries:
        lines += _entry_lines(e)
    lines += ["", "confidence breakdown", *(_breakdown(v.confidence_breakdown, "  ") or ["  (none)"])]
    answer = v.answer.strip()
    if answer:
        a_lines = answer.splitlines()
        lines += ["", "answer", *(f"  {ln}" for ln in a_lines[:20])]
        if len(a_lines) > 20:
            lines.append(f"  ... ({len(a_lines) - 20} more lines; `rk runs export` has everything)")
    return "\n".join(lines)


@runs.command("show")
@_data_dir_option
@click.argument("run_id")
@click.option("--full", is_flag=True, help="Every step's output, reasons, calls, tokens and cost.")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, full: bool) -> None:
    """A run as a tree: header, entries, steps (and for_each items), confidence breakdown.
    With --full: the whole reasoning, every step's output (reasonkit/viewer/terminal.py).

    RUN_ID may be a unique prefix of the id."""
    rid, trace = _saved_trace(ctx, run_id)
    if full:
        import shutil

        from reasonkit.viewer import render_full

        width = min(max(shutil.get_terminal_size((100, 24)).columns, 60), 160)
        echo_untrusted(render_full(trace, width=width))
        return
    echo_untrusted(render_tree(trace))


def _output_option(help_text: str):
    """`--output/-o FILE` of the commands that write a run out (`export`, `view`)."""
    return click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help=help_text)


@runs.command("export")
@_data_dir_option
@click.argument("run_id")
@_output_option("Write to this file (atomically) instead of stdout.")
@click.pass_context
def runs_export(ctx: click.Context, run_id: str, output: Path | None) -> None:
    """The full trace JSON of a run (prompts, raw responses, outputs, usage).

    RUN_ID may be a unique prefix of the id."""
    rid, trace = _saved_trace(ctx, run_id)
    text = json.dumps(trace, indent=2, ensure_ascii=False) + "\n"
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    output = output.expanduser()
    write_atomically(output, text)
    click.echo(f"run {rid} written to {output}", err=True)


@runs.command("prune")
@_data_dir_option
@click.option(
    "--older-than-days",
    type=click.FloatRange(0, None),
    help="Delete finished runs started more than D days ago.",
)
@click.option("--keep", type=click.IntRange(0, None), help="Keep only the newest N finished runs.")
@click.pass_context
def runs_prune(ctx: click.Context, older_than_days: float | None, keep: int | None) -> None:
    """Delete old runs (running runs are never deleted)."""
    if older_than_days is None and keep is None:
        _err("say what to delete: --older-than-days D and/or --keep N", EXIT_USAGE)
    store = _open(ctx)
    if store is None:
        click.echo("deleted 0 runs (no runs recorded yet)")
        return
    n = store.prune(max_age_days=older_than_days, max_count=keep)
    click.echo(f"deleted {n} run{'s' if n != 1 else ''}; {store.count()} left in {store.path}")
