"""`rk eval`: measure a tool's accuracy and calibration on labelled items (reasonkit/eval/), fit a
calibrator from the results (`rk eval fit`) and write a report (`rk eval report`)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from reasonkit import provider_kinds
from reasonkit.cli.common import EXIT_INTERRUPTED, fail, load_registry, load_settings, warn


def _default_output(name: str, dataset: str, seed: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.rsplit("/", 1)[-1].removesuffix(".jsonl"))
    return f"rk-eval/{name}-{stem}-seed{seed}"


def _bar(quiet: bool) -> Any:
    """A rich progress bar on stderr when it is a terminal (plain lines otherwise: logs, CI, pipes)."""
    if quiet or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("rk eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def _progress(bar: Any, quiet: bool, started: float) -> Callable[[int, int, str], None]:
    """The harness's progress callback: a line above the live bar on a terminal, plain lines on
    stderr otherwise, nothing with --quiet."""

    def progress(done: int, total: int, line: str) -> None:
        text = f"[{done}/{total} {time.monotonic() - started:6.0f}s] {line}"
        if bar is not None:  # a terminal: the line above a live bar
            bar.console.print(text, markup=False, highlight=False)
            bar.update(0, completed=done, total=total)
        elif not quiet:
            click.echo(text, err=True)

    return progress


@click.group("eval", invoke_without_command=True)
@click.option("--protocol", help="Evaluate one ThinkTool protocol.")
@click.option("--profile", help="Evaluate a profile (chain of ThinkTools).")
@click.option(
    "--dataset",
    help="A shipped set (claims, arguments), rg:<reasoning-gym task> (e.g. rg:basic_arithmetic) "
    "or a JSONL file.",
)
@click.option(
    "--n", "n", type=click.IntRange(1, 100000), help="Items to use (default: all; reasoning-gym: 20)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses (and generates) the items.")
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Items at once."
)
@click.option("--budget", multiple=True, help="Per-item budget, as for rk think: 30s, 2m, 4000t, $0.05.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Folder for per-item results (resumable); default rk-eval/<tool>-<dataset>-seed<seed>.",
)
@click.option(
    "--baseline",
    type=click.Choice(["direct", "none"]),
    default="direct",
    show_default=True,
    help="Also answer each item by one direct call to the same model.",
)
@click.option("--provider", help=provider_kinds.names_help())
@click.option("--model", help="Model id for the provider.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def eval_group(
    ctx,
    protocol,
    profile,
    dataset,
    n,
    seed,
    concurrency,
    budget,
    fmt,
    output,
    baseline,
    provider,
    model,
    quiet,
):
    """Run a tool over labelled items and report accuracy, calibration (ECE, Brier, AUROC), selective
    accuracy, tokens, cost and time, beside one direct call to the same model.

    \b
    rk eval --protocol proofguard --dataset claims --n 20
    rk eval fit rk-eval/proofguard-claims-seed0     # fit a calibrator used by later runs
    rk eval report rk-eval/proofguard-claims-seed0  # report.md + reliability.png"""
    if ctx.invoked_subcommand is not None:
        return
    if bool(protocol) == bool(profile):
        fail("give one of --protocol ID or --profile NAME (and --dataset)")
    if not dataset:
        fail("give --dataset: claims, arguments, rg:<reasoning-gym task> or a JSONL file")
    settings = load_settings(ctx)
    explicit = "level" in settings.logging.model_fields_set
    from reasonkit.observability.logging import setup_logging

    setup_logging(settings, level=None if explicit else "warning")
    import anyio

    from reasonkit.engine import parse_budget
    from reasonkit.errors import EvalError, InputError, NoProviderConfigured
    from reasonkit.eval.datasets import load_dataset
    from reasonkit.eval.harness import EVAL_METHOD, EvalSpec, run_eval
    from reasonkit.eval.report import render_text
    from reasonkit.eval.results import EvalLog
    from reasonkit.providers.stack import build_provider
    from reasonkit.run_notices import provider_notice
    from reasonkit.run_request import RunKind
    from reasonkit.runs import RunService

    try:
        requested = parse_budget(list(budget)) if budget else None
        data = load_dataset(dataset, n=n, seed=seed)
    except (InputError, EvalError) as exc:
        fail(str(exc))
    registry = load_registry(settings)
    kind: RunKind = "protocol" if protocol else "profile"
    name = protocol or profile
    known = registry.protocols if protocol else registry.profiles
    if name not in known:
        fail(f"unknown {kind} '{name}' (loaded: {', '.join(sorted(known))})")
    try:
        llm = build_provider(settings, provider, model)
    except NoProviderConfigured as exc:
        fail(str(exc))
    service = RunService(settings, registry)  # no store: eval runs are not saved as runs
    service.metrics.know([EVAL_METHOD])
    notice = provider_notice(service.settings, llm)
    if notice and not quiet:
        warn(notice)
    log = EvalLog(output or _default_output(name, dataset, seed))
    meta: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "dataset": data.name,
        "seed": seed,
        "n": len(data.items),
        "provider": llm.name,
        "model": llm.model,
        "baseline": baseline,
        "started_at": time.time(),
    }
    spec = EvalSpec(
        kind, name, data, baseline=baseline == "direct", concurrency=concurrency, budget=requested
    )
    started = time.monotonic()

    bar = _bar(quiet)
    progress = _progress(bar, quiet, started)

    async def go() -> dict[str, Any]:
        try:
            return await run_eval(service, llm, spec, log, meta, progress)
        finally:
            await llm.aclose()

    if not quiet:
        click.echo(
            f"rk eval: {kind} {name} on {data.name} ({len(data.items)} items), results in {log.dir}", err=True
        )
    try:
        if bar is not None:
            bar.add_task("items", total=None)
            bar.start()
        summary = anyio.run(go)
    except EvalError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo(f"rk: interrupted; run the same command again to resume ({log.dir})", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if bar is not None:
            bar.stop()
    click.echo(json.dumps(summary, indent=2) if fmt == "json" else render_text(summary))


@eval_group.command("fit")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--min-items", type=click.IntRange(2, None), default=10, show_default=True)
@click.pass_context
def fit(ctx, folders, min_items):
    """Fit an isotonic calibrator per (tool or profile, model) from eval FOLDERS and save it under
    the data folder; later runs of that tool on that model report calibrated confidence."""
    from reasonkit.errors import EvalError
    from reasonkit.eval.calibrate import fit_and_save

    settings = load_settings(ctx)
    try:
        paths = fit_and_save(list(folders), settings.data_dir(), min_items=min_items)
    except (EvalError, OSError) as exc:
        fail(str(exc))
    for path in paths:
        click.echo(f"calibrator saved to {path}")


@eval_group.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
def report(folder):
    """Write report.md and reliability.png into an eval FOLDER."""
    from reasonkit.errors import EvalError
    from reasonkit.eval.report import write_report

    try:
        md, png = write_report(folder)
    except (EvalError, OSError) as exc:
        fail(str(exc))
    click.echo(f"report: {md}\nreliability diagram: {png}")
