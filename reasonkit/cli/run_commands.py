"""`rk runs`: list, show, export and prune the runs saved in the run store.

Only click is imported at module level: the store (sqlite3) and the settings are imported inside the
commands, so `rk --version` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from reasonkit.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    echo_untrusted,
    fail,
    load_settings,
    write_atomically,
)

# The run statuses, spelled out here (not imported from the engine) so `rk runs --help` stays fast;
# tests/cli check that they equal reasonkit.engine.result.RUN_STATUSES.
STATUS_CHOICES = ("running", "complete", "incomplete", "cancelled", "failed", "interrupted")


def _err(message: str, code: int = EXIT_FAILED) -> None:
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
    from reasonkit.store import RunStore, StoreError

    try:
        store = RunStore(path)
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


def _local(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _conf(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _secs(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


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
            r["started"] = _iso(r["started_at"])
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
        what = f"{r['name']} ({r['kind']})" if r["kind"] == "profile" else r["name"]
        echo_untrusted(
            f"{r['run_id']:<16}  {_local(r['started_at']):<19}  {what:<24}  "
            f"{r['status']:<11}  {_conf(r['confidence'])}"
        )


def _breakdown(factors: list[dict[str, Any]], indent: str) -> list[str]:
    out = []
    for f in factors or []:
        d = f.get("delta", 0.0)
        sign = "" if f.get("signal") == "weighted_mean" else ("+" if d >= 0 else "")
        detail = f" ({f['detail']})" if f.get("detail") else ""
        out.append(f"{indent}{f.get('signal', '?')}: {sign}{d:.3f}{detail}")
    return out


def _step_line(s: dict[str, Any], indent: str, label: str) -> list[str]:
    parts = [
        f"{indent}{label}",
        s.get("status", "?"),
        f"conf {_conf(s.get('confidence'))}",
        _secs(s.get("duration_ms")),
    ]
    lines = ["  ".join(parts)]
    if s.get("error"):
        lines.append(f"{indent}    error: {s['error']}")
    return lines


def render_tree(t: dict[str, Any]) -> str:
    """A run trace as a readable tree (used by `rk runs show`)."""
    tok = t.get("tokens") or {}
    total = sum(int(tok.get(k, 0)) for k in ("input", "output", "cache_read", "cache_write"))
    from reasonkit.render import cost_text

    cost = cost_text(t.get("cost_usd", 0.0), t.get("price_known", True))
    meets = "yes" if t.get("meets_threshold") else "no"
    lines = [
        f"run {t.get('run_id')}  {t.get('kind')} {t.get('name')}",
        f"  status      {t.get('status')}" + (f"  ({t['stop_reason']})" if t.get("stop_reason") else ""),
        f"  confidence  {_conf(t.get('confidence'))}  "
        f"(min {t.get('min_confidence', 0):.2f}, meets threshold: {meets})",
        f"  started     {_local(t.get('started_at'))}   finished {_local(t.get('finished_at'))}   "
        f"duration {_secs(t.get('duration_ms'))}",
        f"  tokens      {total} ({tok.get('input', 0)} in, {tok.get('output', 0)} out, "
        f"{tok.get('cache_read', 0)} cache read, {tok.get('cache_write', 0)} cache write)   cost {cost}",
    ]
    if t.get("provider") or t.get("model"):
        lines.append(f"  provider    {t.get('provider', '')} {t.get('model', '')}".rstrip())
    for k, v in (t.get("inputs") or {}).items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        text = " ".join(text.split())
        lines.append(f"  input {k}: {text[:200]}{'...' if len(text) > 200 else ''}")
    for e in t.get("errors") or []:
        lines.append(f"  error: {e}")
    lines.append("")
    lines.append("entries")
    for e in t.get("entries") or []:
        label = (
            e["entry"] if e.get("entry") == e.get("protocol") else f"{e.get('entry')} ({e.get('protocol')})"
        )
        head = f"  {label}  {e.get('status')}  conf {_conf(e.get('confidence'))}"
        if e.get("status") not in ("skipped", "pending"):
            meets_entry = "yes" if e.get("meets_threshold") else "no"
            head += f"  meets threshold: {meets_entry}  {_secs(e.get('duration_ms'))}"
        lines.append(head)
        if e.get("skip_reason"):
            lines.append(f"      skipped: {e['skip_reason']}")
        for s in e.get("steps") or []:
            lines += _step_line(s, "    ", s.get("step_id", "?"))
            for it in s.get("items") or []:
                lines += _step_line(it, "        ", f"item {it.get('item_index')}")
        if e.get("confidence_breakdown"):
            lines.append("    breakdown")
            lines += _breakdown(e["confidence_breakdown"], "      ")
    lines.append("")
    lines.append("confidence breakdown")
    lines += _breakdown(t.get("confidence_breakdown") or [], "  ") or ["  (none)"]
    answer = (t.get("answer") or "").strip()
    if answer:
        lines.append("")
        lines.append("answer")
        a_lines = answer.splitlines()
        lines += [f"  {ln}" for ln in a_lines[:20]]
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
    store, rid = _resolve(ctx, run_id)
    trace = store.get(rid)
    if trace is None:
        _err(f"run '{rid}' has no saved trace")
    if full:
        import shutil

        from reasonkit.viewer import render_full

        width = min(max(shutil.get_terminal_size((100, 24)).columns, 60), 160)
        echo_untrusted(render_full(trace, width=width))
        return
    echo_untrusted(render_tree(trace))


@runs.command("export")
@_data_dir_option
@click.argument("run_id")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)
@click.pass_context
def runs_export(ctx: click.Context, run_id: str, output: Path | None) -> None:
    """The full trace JSON of a run (prompts, raw responses, outputs, usage).

    RUN_ID may be a unique prefix of the id."""
    store, rid = _resolve(ctx, run_id)
    trace = store.get(rid)
    if trace is None:
        _err(f"run '{rid}' has no saved trace")
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
