"""`rk mcp-config`: every client x transport x provider (x URL for HTTP) prints configuration without
empty placeholders, and hints that fit: the port to serve on comes from the URL, keyless providers
are never told to replace or enter a key."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.cli.server_commands import CLIENTS
from reasonkit.provider_kinds import client_setups

KEY_PLACEHOLDERS = client_setups()
PROVIDERS = sorted(KEY_PLACEHOLDERS)
KEYLESS = {p for p, env in KEY_PLACEHOLDERS.items() if not any(k.endswith("_API_KEY") for k in env)}
# (--url or None, the port the hint must name)
URLS = [
    (None, "9100"),
    ("http://127.0.0.1:9200/mcp", "9200"),
    ("http://rk.lan:8080/mcp", "8080"),
    ("http://rk.lan/mcp", "80"),
    ("https://host/mcp", "PORT"),
    ("https://rk.example.com:8443/mcp", "8443"),
]
EMPTY = [
    re.compile(r"--port(\s*$|\s*\n|\s+[^\dP])", re.M),  # "--port " with no number
    re.compile(r"<\s*>"),
    re.compile(r"=(''|\"\"|\s|$)", re.M),  # KEY= with nothing after it
    re.compile(r"\$\{input:\}"),
    re.compile(r"\bNone\b"),
    re.compile(r":\s*\"\""),  # "key": ""
]


def run(*args: str):
    return CliRunner().invoke(main, list(args), env={"REASONKIT_CONFIG": "", "SERVER_PORT": ""})


def cases():
    for client in CLIENTS:
        for provider in PROVIDERS:
            yield client, "stdio", provider, None, None
            for url, port in URLS:
                yield client, "http", provider, url, port


@pytest.mark.parametrize(("client", "transport", "provider", "url", "port"), list(cases()))
def test_mcp_config_has_no_empty_placeholder_and_fitting_hints(client, transport, provider, url, port):
    args = ["mcp-config", client, "--transport", transport, "--provider", provider]
    if url:
        args += ["--url", url]
    r = run(*args)
    if client == "claude-desktop" and transport == "http":
        assert r.exit_code == 2 and "only starts local (stdio) servers" in r.output
        return
    assert r.exit_code == 0, r.output
    out, hint = r.stdout, r.stderr
    for pattern in EMPTY:
        assert not pattern.search(out), (pattern.pattern, out)
        assert not pattern.search(hint), (pattern.pattern, hint)
    if client != "claude-code":
        json.loads(out)
    if transport == "http":
        assert (url or "http://127.0.0.1:9100/mcp") in out
        assert "API_KEY" not in out and "key" not in hint.lower().replace("bearer tokens", "")
        assert f"serve-mcp --port {port}" in hint or f"serve-mcp --host 0.0.0.0 --port {port}" in hint
        if port == "PORT":
            assert "HTTPS proxy" in hint and "the port the proxy forwards" in hint
        if url and "127.0.0.1" not in url:
            assert "bearer tokens" in hint
        return
    # stdio: the client starts rk, with the provider's variables
    assert "serve-mcp" in out and all(k in out for k in KEY_PLACEHOLDERS[provider])
    if provider in KEYLESS:
        assert "placeholder key" not in hint and "asks for the key" not in hint
        assert "No key is needed" in hint
        assert ("embedded local model" if provider == "local" else "LLM_DEFAULT_MODEL") in hint
    elif client == "vscode":
        assert "VS Code asks for the key once" in hint and "placeholder key" not in hint
    else:
        assert "Replace the placeholder key." in hint


@pytest.mark.parametrize("url", ["ftp://host/mcp", "host:9100/mcp", "http://:9100/mcp", "http://h:99999/mcp"])
def test_mcp_config_refuses_a_url_that_is_not_http(url):
    r = run("mcp-config", "cursor", "--transport", "http", "--url", url)
    assert r.exit_code == 2 and "--url" in r.output and "Traceback" not in r.output
