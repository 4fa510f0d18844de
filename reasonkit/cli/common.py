"""What every `rk` subcommand shares: exit codes, the failure exit, settings and the registry.

Only click is imported at module level; settings, protocols and everything heavy are imported
inside the functions, so `rk --help` stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from reasonkit.config import Settings
    from reasonkit.protocol.loader import Registry

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `rk: error: ...` on stderr and exit (2: a usage or configuration problem)."""
    click.echo(f"rk: error: {message}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"rk: warning: {message}", err=True)


def load_settings(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Settings:
    """The layered settings (defaults < file < environment < these CLI overrides); exit 2 on a
    config problem."""
    from reasonkit.config import load_settings as load
    from reasonkit.errors import ConfigError

    config = ctx.obj.get("config") if isinstance(ctx.obj, dict) else None
    try:
        return load(config, overrides)
    except ConfigError as exc:
        fail(str(exc))


def load_registry(settings: Settings) -> Registry:
    """Built-in and user protocols; invalid files are skipped with a warning each."""
    from reasonkit.protocol.loader import load_registry as load

    registry = load([Path(d) for d in settings.protocols.dirs])
    for problem in registry.problems:
        warn(f"skipped invalid protocol data: {problem}")
    return registry
