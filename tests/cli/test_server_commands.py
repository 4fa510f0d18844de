"""`rk mcp-config` output and `rk serve-mcp` start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main


def run(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(
        main, list(args), env={"REASONKIT_CONFIG": "", **(env or {})}, catch_exceptions=False
    )
    return result


def test_claude_desktop_is_stdio_json_with_absolute_command_and_placeholder():
    r = run("mcp-config", "claude-desktop", "--provider", "anthropic")
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    entry = cfg["mcpServers"]["reasonkit"]
    assert Path(entry["command"]).is_absolute()
    assert entry["args"][-1] == "serve-mcp"
    assert entry["env"] == {"ANTHROPIC_API_KEY": "<your Anthropic API key>"}
    assert "%APPDATA%\\Claude\\claude_desktop_config.json" in r.stderr
    assert "claude_desktop_config.json" not in r.stdout


def test_claude_desktop_refuses_http():
    r = CliRunner().invoke(main, ["mcp-config", "claude-desktop", "--transport", "http"])
    assert r.exit_code == 2 and "only starts local (stdio) servers" in r.output


def test_claude_code_commands():
    r = run("mcp-config", "claude-code", "--provider", "openai")
    assert r.exit_code == 0
    assert r.stdout.startswith("claude mcp add reasonkit --scope user --env OPENAI_API_KEY=")
    assert r.stdout.rstrip().endswith(" serve-mcp")
    r = run("mcp-config", "claude-code", "--transport", "http", env={"SERVER_PORT": "9200"})
    assert r.stdout.strip() == "claude mcp add --transport http reasonkit http://127.0.0.1:9200/mcp"
    assert "--port 9200" in r.stderr


def test_cursor_stdio_and_http():
    stdio = json.loads(run("mcp-config", "cursor", "--provider", "anthropic").stdout)["mcpServers"][
        "reasonkit"
    ]
    assert Path(stdio["command"]).is_absolute() and "ANTHROPIC_API_KEY" in stdio["env"]
    http = json.loads(
        run("mcp-config", "cursor", "--transport", "http", "--url", "https://rk.example/mcp").stdout
    )
    assert http == {"mcpServers": {"reasonkit": {"url": "https://rk.example/mcp"}}}


def test_vscode_uses_secure_inputs_for_keys():
    cfg = json.loads(run("mcp-config", "vscode", "--provider", "openrouter").stdout)
    server = cfg["servers"]["reasonkit"]
    assert server["type"] == "stdio" and server["args"][-1] == "serve-mcp"
    assert server["env"] == {"OPENROUTER_API_KEY": "${input:openrouter-api-key}"}
    assert cfg["inputs"] == [
        {
            "type": "promptString",
            "id": "openrouter-api-key",
            "description": "OpenRouter API key",
            "password": True,
        }
    ]
    http = json.loads(run("mcp-config", "vscode", "--transport", "http").stdout)
    assert http == {"servers": {"reasonkit": {"type": "http", "url": "http://127.0.0.1:9100/mcp"}}}
    local = json.loads(run("mcp-config", "vscode", "--provider", "ollama").stdout)
    assert (
        local["inputs"] == []
        and local["servers"]["reasonkit"]["env"]["OPENAI_BASE_URL"] == "http://127.0.0.1:11434/v1"
    )


@pytest.mark.parametrize("client", ["claude-desktop", "claude-code", "cursor", "vscode"])
def test_every_client_names_the_running_rk(client, tmp_path):
    # The installed `rk` script itself (not pytest's argv[0]) must name its own absolute path.
    exe = Path(sys.executable).parent / "rk"
    assert exe.exists(), f"{exe} missing: install the package (pip install -e '.[dev]')"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REASONKIT_CONFIG": ""}
    r = subprocess.run([str(exe), "mcp-config", client], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(exe) in r.stdout and "serve-mcp" in r.stdout
    assert "-m reasonkit.cli" not in r.stdout and '"-m"' not in r.stdout


def test_serve_mcp_bad_config_fails_on_stderr_only(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'nine'\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REASONKIT_CONFIG": str(bad)}
    r = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "serve-mcp"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2
    assert r.stdout == ""
    assert "server.port" in r.stderr and "Traceback" not in r.stderr


def test_serve_mcp_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REASONKIT_DATA_DIR": str(blocker / "data")}
    r = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "serve-mcp"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert "cannot start the MCP server" in r.stderr


def test_serve_mcp_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        }
        r = subprocess.run(
            [sys.executable, "-m", "reasonkit.cli", "serve-mcp", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert r.returncode == 1 and r.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
