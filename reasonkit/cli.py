"""`rk`: a thin shell over the engine, store and server.

Heavy modules (SDKs, engine, MCP) are imported inside the commands that need them, so
`rk --version` and `rk --help` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reasonkit import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"rk: error: {message}", err=True)
    sys.exit(code)


def _settings(ctx: click.Context, overrides: dict[str, Any] | None = None):
    from reasonkit.config import ConfigError, load_settings

    try:
        return load_settings(ctx.obj.get("config"), overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _registry(settings):
    from reasonkit.protocol.loader import load_registry

    reg = load_registry([Path(d) for d in settings.protocols.dirs])
    for p in reg.problems:
        click.echo(f"rk: warning: skipped invalid protocol data: {p}", err=True)
    return reg


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="rk", message="%(prog)s %(version)s")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="REASONKIT_CONFIG", help="Config file (TOML).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """ReasonKit: structured-reasoning ThinkTools for AI assistants."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


# --------------------------------------------------------------------------- think
@main.command()
@click.argument("query", required=False)
@click.option("--profile", help="Profile to run (default: [engine] default_profile, 'balanced').")
@click.option("--protocol", help="Run a single ThinkTool protocol instead of a profile.")
@click.option("--context", help="Background for the question.")
@click.option("--input", "extra", multiple=True, metavar="NAME=VALUE", help="Extra protocol input (e.g. sources=..., criteria=...).")
@click.option("--provider", help="anthropic, openai, openrouter, or a [llm.providers] name.")
@click.option("--model", help="Model id for the provider.")
@click.option("--budget", multiple=True, help="Stop scheduling new steps past: 30s, 2m, 4000t, $0.05 (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--save-trace", type=click.Path(file_okay=False), help="Also write the full trace JSON into this directory.")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Steps/items running at once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def think(ctx, query, profile, protocol, context, extra, provider, model, budget, fmt, save_trace, concurrency, quiet):
    """Reason about QUERY with a profile (chain of ThinkTools) or one protocol.

    QUERY may be '-' to read it from stdin. The result goes to stdout, progress to stderr."""
    if query is None or query == "-":
        if sys.stdin.isatty() and query is None:
            _fail("give a question: rk think \"...\" (or '-' to read it from stdin)")
        query = sys.stdin.read()
    if not query.strip():
        _fail("the question is empty")
    if profile and protocol:
        _fail("use either --profile or --protocol, not both")
    settings = _settings(ctx, {"engine.max_concurrency": concurrency})
    from reasonkit.engine import InputError, parse_budget

    try:
        b = parse_budget(list(budget))
    except InputError as exc:
        _fail(str(exc))
    if b.seconds is None and b.tokens is None and b.usd is None:
        e = settings.engine
        b.seconds, b.tokens, b.usd = e.budget_secs, e.budget_tokens, e.budget_usd
    from reasonkit.providers import NoProviderConfigured, build_provider

    try:
        llm = build_provider(settings, provider, model)
    except NoProviderConfigured as exc:
        _fail(str(exc))
    reg = _registry(settings)
    target_profile = None if protocol else (profile or settings.engine.default_profile)
    if protocol and protocol not in reg.protocols:
        _fail(f"unknown protocol '{protocol}' (loaded: {', '.join(sorted(reg.protocols))})")
    if target_profile and target_profile not in reg.profiles:
        _fail(f"unknown profile '{target_profile}' (loaded: {', '.join(sorted(reg.profiles))})")
    inputs: dict[str, Any] = {}
    if protocol:
        proto = reg.protocols[protocol]
        main_input = next((n for n, s in proto.inputs.items() if s.required), "query")
        inputs[main_input] = query
    else:
        inputs["query"] = query
    if context:
        inputs["context"] = context
    for kv in extra:
        if "=" not in kv:
            _fail(f"--input expects NAME=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        inputs[k.strip()] = v
    from reasonkit.cli_progress import run_with_progress

    try:
        result = run_with_progress(settings, reg, llm, protocol, target_profile, inputs, b, quiet)
    except InputError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo("rk: interrupted", err=True)
        sys.exit(130)
    if save_trace:
        out_dir = Path(save_trace)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{result.run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result.trace(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        if not quiet:
            click.echo(f"trace saved to {path}", err=True)
    from reasonkit.render import render_result

    click.echo(render_result(result, fmt))
    sys.exit(EXIT_FAILED if result.status == "failed" else EXIT_OK)


# --------------------------------------------------------------------------- protocols
@main.group()
def protocols() -> None:
    """List, show and validate ThinkTool protocols."""


@protocols.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def protocols_validate(ctx, paths):
    """Check protocol/profile files (default: every loaded directory). Exit 1 if anything is wrong."""
    from reasonkit.protocol.loader import load_registry, validate_paths

    if paths:
        reg, problems = validate_paths(list(paths))
        checked = list(paths)
    else:
        settings = _settings(ctx)
        reg = load_registry([Path(d) for d in settings.protocols.dirs])
        problems = reg.problems
        checked = ["built-in protocols"] + list(settings.protocols.dirs)
    for p in problems:
        click.echo(f"error: {p}")
    if problems:
        click.echo(f"{len(problems)} problem(s) found in {', '.join(map(str, checked))}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"ok: {', '.join(map(str, checked))} ({len(reg.protocols)} protocols, {len(reg.profiles)} profiles in effect)")


@protocols.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def protocols_list(ctx, fmt):
    """The protocols in effect (built-in and user)."""
    reg = _registry(_settings(ctx))
    rows = [
        {"id": p.id, "name": p.name, "version": p.version, "steps": len(p.steps), "inputs": list(p.inputs), "source": p.source, "description": p.description}
        for p in sorted(reg.protocols.values(), key=lambda p: p.id)
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']:<16} {r['name']:<16} v{r['version']:<8} {r['steps']} steps  inputs: {', '.join(r['inputs'])}")
        click.echo(f"{'':<16} {r['description']}")


@protocols.command("show")
@click.argument("protocol_id")
@click.pass_context
def protocols_show(ctx, protocol_id):
    """Print a protocol's TOML source."""
    reg = _registry(_settings(ctx))
    if protocol_id not in reg.protocols:
        _fail(f"unknown protocol '{protocol_id}' (loaded: {', '.join(sorted(reg.protocols))})")
    p = reg.protocols[protocol_id]
    click.echo(f"# {p.source}")
    click.echo(Path(p.source).read_text(encoding="utf-8"))


@main.group()
def profiles() -> None:
    """Profiles: chains of ThinkTools with a confidence threshold."""


@profiles.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def profiles_list(ctx, fmt):
    """The profiles in effect."""
    reg = _registry(_settings(ctx))
    rows = []
    for p in sorted(reg.profiles.values(), key=lambda p: p.id):
        chain = []
        for e in p.chain:
            s = e.entry_id if e.entry_id == e.protocol else f"{e.entry_id}({e.protocol})"
            if e.when:
                s += f" [if conf {'<' + str(e.when.confidence_below) if e.when.confidence_below is not None else '>' + str(e.when.confidence_above)}]"
            chain.append(s)
        rows.append({"id": p.id, "min_confidence": p.min_confidence, "chain": chain, "description": p.description})
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']:<12} min {r['min_confidence']:.2f}  {' -> '.join(r['chain'])}")
        click.echo(f"{'':<12} {r['description']}")


# --------------------------------------------------------------------------- config
@main.group()
def config() -> None:
    """Create and inspect configuration."""


@config.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=Path("~/.config/reasonkit/config.toml"))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(path: Path, force: bool):
    """Write a commented default config file."""
    from reasonkit.config import default_config_text

    path = path.expanduser()
    if path.exists() and not force:
        _fail(f"{path} exists; use --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(default_config_text(), encoding="utf-8")
    tmp.replace(path)
    click.echo(f"wrote {path}")


@config.command("show")
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml")
@click.pass_context
def config_show(ctx, fmt):
    """Print the effective settings (secrets masked)."""
    from reasonkit.config import masked_dict, to_toml

    s = _settings(ctx)
    click.echo(f"# source: {s.source_file or 'defaults + environment'}", err=True)
    click.echo(json.dumps(masked_dict(s), indent=2) if fmt == "json" else to_toml(s))


@config.command("reference")
def config_reference():
    """Print the configuration reference (Markdown) generated from the settings model."""
    from reasonkit.config import reference_markdown

    click.echo(reference_markdown(), nl=False)


# Commands defined in their own modules (each imports its heavy dependencies lazily).
from reasonkit.cli_runs import runs as _runs  # noqa: E402
from reasonkit.cli_server import mcp_config as _mcp_config  # noqa: E402
from reasonkit.cli_server import serve_mcp as _serve_mcp  # noqa: E402

main.add_command(_runs)
main.add_command(_serve_mcp)
main.add_command(_mcp_config)

if __name__ == "__main__":  # pragma: no cover
    main()
