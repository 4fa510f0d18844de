"""`rk think`: run a profile or one protocol through the run service (one `RunService.run`, with
the hooks in think_hooks.py) and print the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reasonkit import provider_kinds
from reasonkit.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    echo_untrusted,
    fail,
    load_registry,
    load_settings,
    setup_cli_logging,
    write_atomically,
)


def _read_query(ctx: click.Context, query: str | None) -> str:
    """The question: the argument, or stdin for '-' or a pipe. None at all shows the usage (exit 2),
    as a newcomer typing `rk think` alone needs to see how to ask."""
    given = query
    if query is None or query == "-":
        query = "" if sys.stdin.isatty() and query is None else sys.stdin.read()
    if given is None and not query.strip():
        click.echo(ctx.get_usage() + "\n", err=True)
        fail("give a question: rk think \"...\" (or '-' to read it from stdin); rk think --help for more")
    if not query.strip():
        fail("the question is empty")
    return query


def _inputs(
    registry: Any, protocol: str | None, query: str, context: str | None, extra: tuple[str, ...]
) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if protocol:
        proto = registry.protocols[protocol]
        main_input = next((n for n, spec in proto.inputs.items() if spec.required), "query")
        inputs[main_input] = query
    else:
        inputs["query"] = query
    if context:
        inputs["context"] = context
    for pair in extra:
        if "=" not in pair:
            fail(f"--input expects NAME=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        inputs[key.strip()] = value
    return inputs


def _show(result: Any, fmt: str, save_trace: str | None, quiet: bool) -> None:
    """The result on stdout (a finished run, or what finished before Ctrl-C), and its trace file."""
    from reasonkit.render import render_result

    if save_trace:
        path = Path(save_trace) / f"{result.run_id}.json"
        write_atomically(path, json.dumps(result.trace(), indent=2, ensure_ascii=False))
        if not quiet:
            click.echo(f"trace saved to {path}", err=True)
    echo_untrusted(render_result(result, fmt))


@click.command()
@click.argument("query", required=False)
@click.option("--profile", help="Profile to run (default: [engine] default_profile, 'balanced').")
@click.option("--protocol", help="Run a single ThinkTool protocol instead of a profile.")
@click.option("--context", help="Background for the question.")
@click.option(
    "--input",
    "extra",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra protocol input (e.g. sources=..., criteria=...).",
)
@click.option("--provider", help=provider_kinds.names_help())
@click.option("--model", help="Model id for the provider.")
@click.option(
    "--budget", multiple=True, help="Stop scheduling new steps past: 30s, 2m, 4000t, $0.05 (repeatable)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@click.option(
    "--save-trace",
    type=click.Path(file_okay=False),
    help="Also write the full trace JSON into this directory.",
)
@click.option("--concurrency", type=click.IntRange(1, 256), help="Steps/items running at once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def think(
    ctx,
    query,
    profile,
    protocol,
    context,
    extra,
    provider,
    model,
    budget,
    fmt,
    save_trace,
    concurrency,
    quiet,
):
    """Reason about QUERY with a profile (chain of ThinkTools) or one protocol.

    QUERY may be '-' to read it from stdin. The result goes to stdout, progress to stderr."""
    query = _read_query(ctx, query)
    if profile and protocol:
        fail("use either --profile or --protocol, not both")
    settings = load_settings(ctx, {"engine.max_concurrency": concurrency})
    import anyio

    # The terminal shows progress and the result; logs only from warnings up, unless a level was set
    # (rk --log-level, LOG_LEVEL, RUST_LOG or [logging] level); short lines on a terminal.
    setup_cli_logging(settings)

    from reasonkit.engine import parse_budget
    from reasonkit.errors import InputError
    from reasonkit.protocol.loader import unknown_name
    from reasonkit.run_request import RunKind, RunRequest

    try:
        requested = parse_budget(list(budget))
    except InputError as exc:
        fail(str(exc))
    registry = load_registry(settings)
    kind: RunKind = "protocol" if protocol else "profile"
    name = protocol or profile or settings.engine.default_profile
    if protocol and protocol not in registry.protocols:
        fail(unknown_name("protocol", protocol, registry.protocols))
    if not protocol and name not in registry.profiles:
        fail(unknown_name("profile", name, registry.profiles))
    from reasonkit.cli.progress import ProgressDisplay
    from reasonkit.cli.think_hooks import ThinkHooks
    from reasonkit.runs import RunService

    service = RunService(settings, registry)
    request = RunRequest(kind, name, _inputs(registry, protocol, query, context, extra), budget=requested)

    display = ProgressDisplay(name, quiet)
    hooks = ThinkHooks(service, provider, model, display)

    async def go() -> Any:
        try:
            return await service.run(request, hooks)
        finally:
            if hooks.llm is not None:
                await hooks.llm.aclose()

    try:
        with display:
            outcome = anyio.run(go)
    except KeyboardInterrupt:
        # The run service recorded the run as cancelled with what finished; show that too.
        if hooks.run is None or hooks.run.result.status != "cancelled":  # before the run started
            click.echo("rk: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("rk: interrupted; what finished follows, marked cancelled", err=True)
        _show(hooks.run.result, fmt, save_trace, quiet)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        service.close()
    if outcome.refusal is not None:
        fail(str(outcome.refusal))
    result = outcome.result
    _show(result, fmt, save_trace, quiet)
    sys.exit(EXIT_FAILED if result.status == "failed" else EXIT_OK)
