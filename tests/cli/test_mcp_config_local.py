"""`rk mcp-config` on the keyless setup: with no provider named it writes no key (a pasted
placeholder would be taken as a key and stop the server using the local model); `--provider local`
and `--model-path` choose the embedded model explicitly, in every client's format."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.cli.server_commands import CLIENTS

# No provider configured: none of the kinds' variables reaches the command.
BARE = {
    "REASONKIT_CONFIG": "",
    "SERVER_PORT": "",
    "ANTHROPIC_API_KEY": None,
    "OPENAI_API_KEY": None,
    "OPENAI_BASE_URL": None,
    "OPENROUTER_API_KEY": None,
    "LLM_DEFAULT_PROVIDER": None,
}


def run(*args: str, **env: str | None):
    return CliRunner().invoke(main, ["mcp-config", *args], env={**BARE, **env})


def server_env(client: str, out: str) -> dict[str, str]:
    """The environment the client gives the server, read back from each client's format."""
    if client == "claude-code":
        words = shlex.split(out)
        return dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--env")
    cfg = json.loads(out)
    entry = cfg["servers" if client == "vscode" else "mcpServers"]["reasonkit"]
    return dict(entry.get("env", {}))


@pytest.mark.parametrize("client", CLIENTS)
def test_no_provider_configured_writes_no_key(client):
    r = run(client)
    assert r.exit_code == 0, r.output
    assert "API_KEY" not in r.stdout and "<your" not in r.stdout
    assert server_env(client, r.stdout) == {}
    assert "embedded local model" in r.stderr and "placeholder" not in r.stderr
    if client == "vscode":
        assert json.loads(r.stdout)["inputs"] == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_key_in_this_shell_is_named_but_not_written(client):
    r = run(client, ANTHROPIC_API_KEY="sk-ant-secret")
    assert r.exit_code == 0, r.output
    assert "sk-ant-secret" not in r.output and "API_KEY" not in r.stdout
    assert "--provider anthropic" in r.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_provider_local_is_an_explicit_choice(client, tmp_path):
    r = run(client, "--provider", "local")
    assert r.exit_code == 0, r.output
    assert server_env(client, r.stdout) == {"LLM_DEFAULT_PROVIDER": "local"}
    model = tmp_path / "my model.gguf"
    model.write_bytes(b"GGUF")
    r = run(client, "--model-path", str(model))  # a model path implies the local provider
    assert r.exit_code == 0, r.output
    assert server_env(client, r.stdout) == {
        "LLM_DEFAULT_PROVIDER": "local",
        "LOCAL_MODEL_PATH": str(model.resolve()),
    }
    assert "No key is needed" in r.stderr and "ollama" not in r.stderr


def test_model_path_must_be_a_file_and_is_only_for_local(tmp_path):
    r = run("cursor", "--model-path", str(tmp_path / "missing.gguf"))
    assert r.exit_code == 2 and "missing.gguf" in r.output and "not a file" in r.output
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    r = run("cursor", "--provider", "openai", "--model-path", str(model))
    assert r.exit_code == 2 and "--model-path" in r.output and "local" in r.output
