"""`rk think`: run a profile or one protocol through the run service and print the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reasonkit.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    echo_untrusted,
    fail,
    load_registry,
    load_settings,
    setup_cli_logging,
    warn,
    write_atomically,
)


def _read_query(query: str | None) -> str:
    if query is None or query == "-":
        if sys.stdin.isatty() and query is None:
            fail("give a question: rk think \"...\" (or '-' to read it from stdin)")
        query = sys.stdin.read()
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


def _save_trace(result: Any, directory: str, quiet: bool) -> None:
    path = Path(directory) / f"{result.run_id}.json"
    write_atomically(path, json.dumps(result.trace(), indent=2, ensure_ascii=False))
    if not quiet:
        click.echo(f"trace saved to {path}", err=True)


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
@click.option("--provider", help="anthropic, openai, openrouter, local, or a [llm.providers] name.")
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
    query = _read_query(query)
    if profile and protocol:
        fail("use either --profile or --protocol, not both")
    settings = load_settings(ctx, {"engine.max_concurrency": concurrency})
    import anyio

    # The terminal shows progress and the result; logs only from warnings up, unless a level was set
    # (rk --log-level, LOG_LEVEL, RUST_LOG or [logging] level); short lines on a terminal.
    setup_cli_logging(settings)

    from reasonkit.engine import parse_budget
    from reasonkit.errors import InputError, NoProviderConfigured
    from reasonkit.providers import build_provider
    from reasonkit.runs import CLI_METHOD, RunKind, RunService

    try:
        requested = parse_budget(list(budget))
    except InputError as exc:
        fail(str(exc))
    registry = load_registry(settings)
    kind: RunKind = "protocol" if protocol else "profile"
    name = protocol or profile or settings.engine.default_profile
    if protocol and protocol not in registry.protocols:
        fail(f"unknown protocol '{protocol}' (loaded: {', '.join(sorted(registry.protocols))})")
    if not protocol and name not in registry.profiles:
        fail(f"unknown profile '{name}' (loaded: {', '.join(sorted(registry.profiles))})")
    service = RunService(settings, registry)
    try:
        clean = service.check(
            kind, name, _inputs(registry, protocol, query, context, extra), method=CLI_METHOD
        )
    except InputError as exc:
        fail(str(exc))
    try:
        llm = build_provider(settings, provider, model)
    except NoProviderConfigured as exc:
        fail(str(exc))
    notice = service.provider_notice(llm)
    if notice:
        warn(notice)
    service.open_store()
    if service.store_problem:
        warn(service.store_problem)
    run = service.prepare(kind, name, clean, llm, method=CLI_METHOD)
    run_budget = service.budget(requested)
    budget_notice = service.budget_notice(llm, run_budget)
    if budget_notice:
        warn(budget_notice)
    from reasonkit.cli.progress import ProgressDisplay

    async def go() -> Any:
        try:
            return await service.execute(run, run_budget, display.on_event)
        finally:
            await llm.aclose()

    from reasonkit.render import render_result

    try:
        with ProgressDisplay(name, quiet) as display:
            result = anyio.run(go)
    except KeyboardInterrupt:
        # The run service recorded the run as cancelled with what finished; show that too.
        result = run.result
        if result.status != "cancelled":  # interrupted before the run started
            click.echo("rk: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("rk: interrupted; what finished follows, marked cancelled", err=True)
        if save_trace:
            _save_trace(result, save_trace, quiet)
        echo_untrusted(render_result(result, fmt))
        sys.exit(EXIT_INTERRUPTED)
    finally:
        service.close()
    if save_trace:
        _save_trace(result, save_trace, quiet)
    echo_untrusted(render_result(result, fmt))
    sys.exit(EXIT_FAILED if result.status == "failed" else EXIT_OK)
