"""`[server.oauth]` (issue 23, section 2): the issuer and the audience are HTTPS URLs (http:// only on
a loopback host), set together; a bad value stops `rk serve-mcp` at start with a message that names
the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import ConfigError

AUDIENCE = "https://rk.example.com/mcp"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://idp.example.com/realms/rk",
        "https://tenant.auth0.com/",
        "http://127.0.0.1:8080",
        "http://localhost:8080/realms/dev",
        "http://[::1]:8080",
    ],
)
def test_accepted_issuers(issuer):
    env = {"REASONKIT_OAUTH_ISSUER": issuer, "REASONKIT_OAUTH_AUDIENCE": AUDIENCE}
    oauth = load_settings(environ=env).server.oauth
    assert oauth.enabled and oauth.issuer == issuer and oauth.admin_scope == "reasonkit:admin"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"REASONKIT_OAUTH_ISSUER": "http://idp.example.com"}, "issuer must use https://"),
        ({"REASONKIT_OAUTH_ISSUER": "http://10.0.0.5:8080"}, "issuer must use https://"),
        ({"REASONKIT_OAUTH_ISSUER": "ftp://idp.example.com"}, "issuer must be an absolute https:// URL"),
        ({"REASONKIT_OAUTH_ISSUER": "idp.example.com"}, "issuer must be an absolute https:// URL"),
        ({"REASONKIT_OAUTH_ISSUER": "https://idp.example.com/?x=1"}, "no query or fragment"),
        ({"REASONKIT_OAUTH_AUDIENCE": "http://rk.example.com/mcp"}, "audience must use https://"),
        ({"REASONKIT_OAUTH_AUDIENCE": None}, "audience is not set"),
        ({"REASONKIT_OAUTH_ISSUER": None}, "issuer is not set"),
    ],
)
def test_refused_settings_say_what_is_wrong(env, said):
    environ = {"REASONKIT_OAUTH_ISSUER": "https://idp.example.com", "REASONKIT_OAUTH_AUDIENCE": AUDIENCE}
    environ.update(env)
    with pytest.raises(ConfigError) as err:
        load_settings(environ={k: v for k, v in environ.items() if v is not None})
    assert said in str(err.value) and "server.oauth" in str(err.value)


def test_the_file_table_and_the_scopes(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[server.oauth]\nissuer = "https://idp.example.com"\naudience = "https://rk.example.com/mcp"\n'
        'required_scopes = ["mcp:tools"]\nadmin_scope = "rk:admin"\n'
    )
    scopes = {"REASONKIT_OAUTH_REQUIRED_SCOPES": "mcp:tools, mcp:read"}
    oauth = load_settings(cfg, environ=scopes).server.oauth
    assert oauth.required_scopes == ["mcp:tools", "mcp:read"] and oauth.admin_scope == "rk:admin"
    assert not load_settings(environ={}).server.oauth.enabled


def test_serve_mcp_stops_at_start_on_a_plain_http_issuer(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "REASONKIT_OAUTH_ISSUER": "http://idp.example.com",
        "REASONKIT_OAUTH_AUDIENCE": AUDIENCE,
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "serve-mcp", "--port", "9199"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "REASONKIT_OAUTH_ISSUER" in done.stderr and "https://" in done.stderr
    assert "Traceback" not in done.stderr
