"""`rk`: thin shells over the run service, the store and the server, one module per command group.

Heavy modules (SDKs, engine, MCP) are imported inside the commands that need them, so
`rk --version` and `rk --help` stay fast. Shared helpers (settings, failure exit, exit codes) live in
reasonkit/cli/common.py.
"""

from __future__ import annotations

import click

from reasonkit import __version__
from reasonkit.cli.common import LOG_LEVELS, early_logging
from reasonkit.cli.config_commands import config
from reasonkit.cli.db_commands import db
from reasonkit.cli.eval_commands import eval_group
from reasonkit.cli.model_commands import models
from reasonkit.cli.protocol_commands import profiles, protocols
from reasonkit.cli.provider_commands import providers
from reasonkit.cli.run_commands import runs
from reasonkit.cli.runs_view import runs_view
from reasonkit.cli.server_commands import mcp_config, serve_mcp
from reasonkit.cli.think import think

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="rk", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    envvar="REASONKIT_CONFIG",
    help="Config file (TOML).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log level (env LOG_LEVEL / RUST_LOG; default: warnings and errors only, info for serve-mcp).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Logs on stderr as text (short lines on a terminal) or one JSON object per line (env LOG_FORMAT).",
)
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str | None, log_format: str | None) -> None:
    """ReasonKit: structured-reasoning ThinkTools for AI assistants."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["log_level"] = log_level.lower() if log_level else None
    ctx.obj["log_format"] = log_format
    early_logging(ctx.obj["log_level"], log_format)


for command in (think, protocols, profiles, providers, models, config, runs, serve_mcp, mcp_config):
    main.add_command(command)
runs.add_command(runs_view)
main.add_command(db)
main.add_command(eval_group)
