"""`rk serve-mcp` (the MCP server) and `rk mcp-config` (ready-to-paste client configuration).

Nothing heavy is imported at module level: `rk --help` must stay fast, and on stdio nothing but
MCP messages may ever reach stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from reasonkit import provider_kinds
from reasonkit.cli.common import EXIT_FAILED, EXIT_USAGE, fail, load_settings

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")


@click.command("serve-mcp")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Serve streamable HTTP at /mcp on this port (default: stdio).",
)
@click.option(
    "--host",
    help="Interface for HTTP mode and the metrics port (default: [server] host / SERVER_HOST, 127.0.0.1).",
)
@click.option(
    "--http",
    "http_mode",
    is_flag=True,
    help="Serve HTTP on [server] port / SERVER_PORT (9100) without giving --port.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Also serve /metrics and /health* on this port (env METRICS_PORT).",
)
@click.option(
    "--stateless/--stateful",
    default=None,
    help="Stateless streamable HTTP (default, any replica can answer) or sessions.",
)
@click.option(
    "--provider", help="LLM provider: " + provider_kinds.names_help(in_process=False, extra=("sampling",))
)
@click.option("--model", help="Model id for the provider.")
@click.option(
    "--deadline",
    type=click.FloatRange(min=1, max=3600),
    help="Tool-call deadline in seconds for every tool ([server] tool_deadline_secs; "
    "unset: each tool's time estimate on the provider with margin, 50-600).",
)
@click.option("--log-level", help="trace, debug, info, warning, error (env LOG_LEVEL / RUST_LOG).")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), help="Log lines on stderr (env LOG_FORMAT)."
)
@click.pass_context
def serve_mcp(
    ctx: click.Context,
    port,
    host,
    http_mode,
    metrics_port,
    stateless,
    provider,
    model,
    deadline,
    log_level,
    log_format,
) -> None:
    """Run the MCP server: stdio by default (for Claude Desktop, Claude Code), or streamable HTTP
    at /mcp with --port (Cursor, VS Code, hosted setups). Logs go to stderr."""
    overrides = {
        "server.port": port,
        "server.host": host,
        "server.metrics_port": metrics_port,
        "server.stateless_http": stateless,
        "server.tool_deadline_secs": deadline,
        "llm.default_provider": provider,
        "llm.default_model": model,
        "logging.level": log_level,
        "logging.format": log_format,
    }
    settings = load_settings(ctx, overrides)
    from reasonkit.observability.logging import setup_logging

    setup_logging(settings)
    from reasonkit.errors import SecurityError
    from reasonkit.server.http.security import SecurityPolicy, secret_values

    http = port is not None or http_mode
    bind_host = settings.server.host
    policy = None
    try:
        if http:
            # Tokens, Host/Origin, limits; refuse a non-loopback bind without tokens (exit 2).
            policy = SecurityPolicy.from_settings(settings, bind_host)
            policy.check_bind(bind_host, settings.server.port, settings)
        else:
            from reasonkit.observability.logging import add_secrets

            add_secrets(secret_values(settings, []))
    except SecurityError as exc:
        fail(str(exc), EXIT_USAGE)
    from reasonkit.server.mcp.app import build_server

    try:
        core = build_server(settings)
    except Exception as exc:  # noqa: BLE001 - store or registry trouble: say what, on stderr
        fail(f"cannot start the MCP server: {exc}", EXIT_FAILED)
    from reasonkit.config import load_settings as reload_settings
    from reasonkit.errors import ServeError
    from reasonkit.server.lifecycle.serve import serve_http, serve_stdio

    config_path = ctx.obj.get("config") if ctx.obj else None
    core.settings_loader = lambda: reload_settings(
        config_path, overrides
    )  # SIGHUP re-reads file + environment
    core.bind_host = bind_host
    try:
        if http:
            assert policy is not None
            core.security = policy
            policy.startup_notes(bind_host)
            serve_http(core, bind_host, settings.server.port)
        else:
            serve_stdio(core)
    except ServeError as exc:
        fail(str(exc), EXIT_FAILED)


def _rk_command() -> tuple[str, list[str]]:
    """Absolute command that starts this ReasonKit: the running `rk`, else `rk` on PATH, else
    `python -m reasonkit.cli`."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name in ("rk", "rk.exe"):
        p = argv0 if argv0.is_absolute() else Path(shutil.which(str(argv0)) or argv0).absolute()
        if p.exists():
            return str(p), []
    found = shutil.which("rk")
    if found:
        return str(Path(found).absolute()), []
    return str(Path(sys.executable).absolute()), ["-m", "reasonkit.cli"]


def _keyless(provider: str) -> bool:
    return not any(k.endswith("_API_KEY") for k in provider_kinds.client_setups()[provider])


def _shell_keys() -> list[tuple[str, str]]:
    """(variable, --provider name) for each kind this shell configures by its environment: a client
    does not pass the shell's environment on, so the server it starts would not see them."""
    found = []
    for row in provider_kinds.KINDS.values():
        names = [row.key_env, row.base_url_env if row.base_url_alone else None]
        found += [(var, row.name) for var in names if var and os.environ.get(var)]
    return found


def _placeholder_hint(provider: str | None) -> str:
    """What to fill in: nothing (the local model), the key, or (keyless servers) the model."""
    local = provider_kinds.KINDS["local"]
    if provider is None:
        hint = (
            f"No key is written: the server runs {local.title} ({local.default_model}) unless "
            "its config file names a provider; --provider writes a provider's setup instead."
        )
        for var, name in _shell_keys():
            hint += (
                f" {var} is set in this shell, but clients do not pass your shell's environment on: "
                f"add --provider {name} to write a placeholder for it."
            )
        return hint
    if provider in provider_kinds.KINDS and provider_kinds.KINDS[provider].in_process:
        return f"No key is needed: the server runs {provider_kinds.KINDS[provider].title}."
    if _keyless(provider):
        return (
            "No key is needed: set LLM_DEFAULT_MODEL to a model your server has (ollama list), and "
            "OPENAI_BASE_URL if it does not run on this machine."
        )
    return "Replace the placeholder key."


def _serve_hint(url: str, command: str, pre: list[str]) -> str:
    """How to start the server the client connects to: the port comes from the URL."""
    parsed = urlsplit(url)
    host = parsed.hostname or "127.0.0.1"
    explicit = parsed.port
    serve = " ".join([command, *pre, "serve-mcp"])
    local = host in ("127.0.0.1", "localhost", "::1")
    if explicit is not None:
        port = str(explicit)
    elif parsed.scheme == "http":
        port = "80"
    else:  # https without a port: rk serves plain HTTP behind a TLS proxy on its own port
        return (
            f"Start the server on {host} behind your HTTPS proxy: {serve} --port PORT "
            f"(PORT: the port the proxy forwards {url} to; default 9100). A server reachable from "
            "other machines needs bearer tokens (docs/mcp-clients.md, Bearer tokens)."
        )
    if local:
        return f"Start the server first: {serve} --port {port}"
    return (
        f"Start the server on {host}: {serve} --host 0.0.0.0 --port {port}. A server reachable from "
        "other machines needs bearer tokens (docs/mcp-clients.md, Bearer tokens)."
    )


def check_url(url: str) -> str:
    """An http(s) URL with a host, else a usage error."""
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise click.BadParameter(f"{url!r} is not a valid URL ({exc})", param_hint="'--url'") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise click.BadParameter(
            f"{url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:9100/mcp",
            param_hint="'--url'",
        )
    return url


def client_env(provider: str | None, model_path: str | None) -> dict[str, str]:
    """The server's environment in the client: none when no provider is named (the server's own
    config decides, the local model when it names none), else the provider's setup."""
    if model_path is not None:
        if provider not in (None, "local"):
            raise click.UsageError(
                "--model-path is a model of the local provider: use it with --provider local"
            )
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise click.BadParameter(f"{model_path!r} is not a file", param_hint="'--model-path'")
        return {**provider_kinds.client_setups()["local"], "LOCAL_MODEL_PATH": str(path.resolve())}
    return dict(provider_kinds.client_setups()[provider]) if provider else {}


def client_config(
    client: str,
    transport: str,
    url: str,
    provider: str | None,
    name: str = "reasonkit",
    model_path: str | None = None,
) -> tuple[str, str]:
    """(text for stdout, hint for stderr)."""
    command, pre = _rk_command()
    args = [*pre, "serve-mcp"]
    env = client_env(provider, model_path)
    if model_path is not None:
        provider = "local"
    stdio: dict[str, Any] = {"command": command, "args": args, **({"env": env} if env else {})}
    serve = _serve_hint(url, command, pre) if transport == "http" else ""
    fill = _placeholder_hint(provider)
    if client == "claude-desktop":
        if transport == "http":
            raise click.UsageError(
                "Claude Desktop's config file only starts local (stdio) servers; "
                "remote servers are added in its Settings > Connectors. Use --transport stdio."
            )
        text = json.dumps({"mcpServers": {name: stdio}}, indent=2)
        hint = (
            "Merge this into claude_desktop_config.json and restart Claude Desktop:\n"
            "  macOS:   ~/Library/Application Support/Claude/claude_desktop_config.json\n"
            "  Windows: %APPDATA%\\Claude\\claude_desktop_config.json\n"
            "  Linux:   ~/.config/Claude/claude_desktop_config.json\n"
            f"{fill} "
            "Logs: ~/Library/Logs/Claude/mcp-server-reasonkit.log (macOS), %APPDATA%\\Claude\\logs (Windows)."
        )
        return text, hint
    if client == "claude-code":
        if transport == "http":
            text = f"claude mcp add --transport http {name} {url}"
            hint = f"{serve}\nThen run the printed command in a shell. Check with: claude mcp list"
        else:
            envs = " ".join(f"--env {k}={_shell_quote(v)}" for k, v in env.items())
            text = f"claude mcp add {name} --scope user {envs} -- {_shell_quote(command)} {' '.join(args)}"
            hint = (
                "Run this in a shell (add --scope project to share it in .mcp.json). "
                f"{fill} Check with: claude mcp list"
            )
        return text, hint
    if client == "cursor":
        entry: dict[str, Any] = {"url": url} if transport == "http" else stdio
        text = json.dumps({"mcpServers": {name: entry}}, indent=2)
        hint = (
            "Put this in ~/.cursor/mcp.json (all projects) or .cursor/mcp.json (one project); "
            "on Windows %USERPROFILE%\\.cursor\\mcp.json."
        )
        hint += f"\n{serve}" if transport == "http" else f" {fill}"
        return text, hint
    # vscode
    where = "Put this in .vscode/mcp.json in your workspace (or run 'MCP: Open User Configuration')."
    if transport == "http":
        text = json.dumps({"servers": {name: {"type": "http", "url": url}}}, indent=2)
        return text, f"{where}\n{serve}"
    inputs = []
    vs_env = {}
    for key, value in env.items():
        if key.endswith("_API_KEY"):
            input_id = key.lower().replace("_", "-")
            label = value.removeprefix("<your ").removesuffix(">")
            inputs.append({"type": "promptString", "id": input_id, "description": label, "password": True})
            vs_env[key] = f"${{input:{input_id}}}"
        else:
            vs_env[key] = value
    text = json.dumps(
        {
            "inputs": inputs,
            "servers": {
                name: {
                    "type": "stdio",
                    "command": command,
                    "args": args,
                    **({"env": vs_env} if vs_env else {}),
                }
            },
        },
        indent=2,
    )
    if inputs:
        return text, f"{where} VS Code asks for the key once and stores it securely."
    return text, f"{where} {fill}"


def _shell_quote(s: str) -> str:
    import shlex

    return s if s and all(c.isalnum() or c in "/._-=:\\" for c in s) else shlex.quote(s)


@click.command("mcp-config")
@click.argument("client", type=click.Choice(CLIENTS))
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: the client starts rk; http: it connects to a running `rk serve-mcp --port`.",
)
@click.option("--url", help="HTTP endpoint (default: http://127.0.0.1:<[server] port>/mcp).")
@click.option(
    "--provider",
    type=click.Choice(sorted(provider_kinds.client_setups())),
    help="Write this provider's setup (a key placeholder; local: the embedded model). "
    "Default: none, the server's config decides (the local model when it names no provider).",
)
@click.option(
    "--model-path",
    metavar="PATH",
    help="GGUF model file of the local provider (LOCAL_MODEL_PATH; implies --provider local).",
)
@click.option("--name", default="reasonkit", show_default=True, help="Server name in the client.")
@click.pass_context
def mcp_config(
    ctx: click.Context,
    client: str,
    transport: str,
    url: str | None,
    provider: str | None,
    model_path: str | None,
    name: str,
) -> None:
    """Print ready-to-paste MCP configuration for CLIENT (hints go to stderr)."""
    if url is None:
        settings = load_settings(ctx)
        url = f"http://127.0.0.1:{settings.server.port}/mcp"
    else:
        url = check_url(url)
    text, hint = client_config(client, transport, url, provider, name, model_path)
    click.echo(text)
    click.echo(hint, err=True)
