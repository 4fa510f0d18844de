"""`rk config init|show|reference`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reasonkit.cli.common import fail, load_settings


@click.group()
def config() -> None:
    """Create and inspect configuration."""


@config.command("init")
@click.argument(
    "path", type=click.Path(dir_okay=False, path_type=Path), default=Path("~/.config/reasonkit/config.toml")
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(path: Path, force: bool):
    """Write a commented default config file."""
    from reasonkit.config import default_config_text

    path = path.expanduser()
    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite")
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

    s = load_settings(ctx)
    click.echo(f"# source: {s.source_file or 'defaults + environment'}", err=True)
    if s.logging.level is None:
        click.echo("# [logging] level unset: warnings for rk commands, info for rk serve-mcp", err=True)
    click.echo(json.dumps(masked_dict(s), indent=2) if fmt == "json" else to_toml(s))


@config.command("reference")
def config_reference():
    """Print the configuration reference (Markdown) generated from the settings model."""
    from reasonkit.config import reference_markdown

    click.echo(reference_markdown(), nl=False)
