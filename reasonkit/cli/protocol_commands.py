"""`rk protocols list|show|validate` and `rk profiles list`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reasonkit.cli.common import EXIT_FAILED, fail, load_registry, load_settings


@click.group()
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
        settings = load_settings(ctx)
        reg = load_registry([Path(d) for d in settings.protocols.dirs])
        problems = reg.problems
        checked = ["built-in protocols"] + list(settings.protocols.dirs)
    for p in problems:
        click.echo(f"error: {p}")
    if problems:
        click.echo(f"{len(problems)} problem(s) found in {', '.join(map(str, checked))}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(
        f"ok: {', '.join(map(str, checked))} "
        f"({len(reg.protocols)} protocols, {len(reg.profiles)} profiles in effect)"
    )


@protocols.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def protocols_list(ctx, fmt):
    """The protocols in effect (built-in and user)."""
    reg = load_registry(load_settings(ctx))
    rows: list[dict[str, Any]] = [
        {
            "id": p.id,
            "name": p.name,
            "version": p.version,
            "steps": len(p.steps),
            "inputs": list(p.inputs),
            "source": p.source,
            "description": p.description,
        }
        for p in sorted(reg.protocols.values(), key=lambda p: p.id)
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['id']:<16} {r['name']:<16} v{r['version']:<8} {r['steps']} steps  "
            f"inputs: {', '.join(r['inputs'])}"
        )
        click.echo(f"{'':<16} {r['description']}")


@protocols.command("show")
@click.argument("protocol_id")
@click.pass_context
def protocols_show(ctx, protocol_id):
    """Print a protocol's TOML source."""
    reg = load_registry(load_settings(ctx))
    if protocol_id not in reg.protocols:
        from reasonkit.protocol.loader import unknown_name

        fail(unknown_name("protocol", protocol_id, reg.protocols))
    p = reg.protocols[protocol_id]
    click.echo(f"# {p.source}")
    click.echo(Path(p.source).read_text(encoding="utf-8"))


@click.group()
def profiles() -> None:
    """Profiles: chains of ThinkTools with a confidence threshold."""


@profiles.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def profiles_list(ctx, fmt):
    """The profiles in effect."""
    reg = load_registry(load_settings(ctx))
    rows: list[dict[str, Any]] = []
    for p in sorted(reg.profiles.values(), key=lambda p: p.id):
        chain = []
        for e in p.chain:
            s = e.entry_id if e.entry_id == e.protocol else f"{e.entry_id}({e.protocol})"
            if e.when:
                if e.when.confidence_below is not None:
                    condition = "<" + str(e.when.confidence_below)
                else:
                    condition = ">" + str(e.when.confidence_above)
                s += f" [if conf {condition}]"
            chain.append(s)
        rows.append(
            {"id": p.id, "min_confidence": p.min_confidence, "chain": chain, "description": p.description}
        )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']:<12} min {r['min_confidence']:.2f}  {' -> '.join(r['chain'])}")
        click.echo(f"{'':<12} {r['description']}")
