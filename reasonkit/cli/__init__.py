"""`rk`: thin shells over the run service, the store and the server, one module per command group.

Heavy modules (SDKs, engine, MCP) are imported inside the commands that need them, so
`rk --version` and `rk --help` stay fast. Shared helpers (settings, failure exit, exit codes) live in
reasonkit/cli/common.py.
"""

from __future__ import annotations

import click

from reasonkit import __version__
from reasonkit.cli.config_commands import config
from reasonkit.cli.protocol_commands import profiles, protocols
from reasonkit.cli.provider_commands import providers
from reasonkit.cli.run_commands import runs
from reasonkit.cli.server_commands import mcp_config, serve_mcp
from reasonkit.cli.think import think


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="rk", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    envvar="REASONKIT_CONFIG",
    help="Config file (TOML).",
)
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """ReasonKit: structured-reasoning ThinkTools for AI assistants."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


for command in (think, protocols, profiles, providers, config, runs, serve_mcp, mcp_config):
    main.add_command(command)
