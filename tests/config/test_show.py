"""reasonkit.config.show: `rk config show` never prints a secret."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from reasonkit.config import load_settings, masked_dict, to_toml
from reasonkit.config.show import mask_url


def test_secrets_are_masked():
    settings = load_settings(
        environ={"OPENAI_API_KEY": "sk-supersecret-123", "REDIS_URL": "redis://:pw@host/0"}
    )
    text = to_toml(settings) + json.dumps(masked_dict(settings))
    assert "sk-supersecret-123" not in text and "pw@host" not in text
    assert masked_dict(settings)["llm"]["providers"]["openai"]["api_key"] == "********"
    assert masked_dict(settings)["database"]["redis"]["url"] == "********"


def test_show_lists_the_new_settings_and_leaves_out_bookkeeping(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm.providers.ollama]\napi_base = "http://h/v1"\nstructured_output = "json_text"\n')
    settings = load_settings(cfg, environ={"LOCAL_N_CTX": "2048"})
    shown = tomllib.loads(to_toml(settings))
    assert shown["llm"]["output_mode"] == "auto"
    assert shown["llm"]["local"]["n_ctx"] == 2048
    assert "model_path" not in shown["llm"]["local"]  # None: TOML has no null
    assert shown["llm"]["providers"]["ollama"]["output_mode"] == "prompt"
    assert "source_file" not in masked_dict(settings)


def test_cli_config_show(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": "sk-hidden-999"}
    show = subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert show.returncode == 0, show.stderr
    assert "sk-hidden-999" not in show.stdout + show.stderr and "********" in show.stdout


def test_config_init_writes_what_the_defaults_already_are(tmp_path, capsys):
    """The file `rk config init` wrote once set `[logging] level = "info"`, so every later command
    logged INFO lines; and `rk config show` claimed `info` while commands logged warnings only."""
    from click.testing import CliRunner
    from loguru import logger

    from reasonkit.cli import main
    from reasonkit.cli.common import setup_cli_logging

    path = tmp_path / "config.toml"
    assert CliRunner().invoke(main, ["config", "init", str(path)]).exit_code == 0
    with_file, without = load_settings(path, environ={}), load_settings(environ={})
    assert masked_dict(with_file) == masked_dict(without)
    assert with_file.logging.level is None and "level" not in tomllib.loads(to_toml(without))["logging"]
    setup_cli_logging(with_file)
    logger.info("an info line")
    logger.warning("a warning line")
    err = capsys.readouterr().err
    assert "a warning line" in err and "an info line" not in err
    shown = CliRunner().invoke(main, ["--config", str(path), "config", "show"], env={"LOG_LEVEL": None})
    assert "level unset: warnings for rk commands" in shown.stderr


def test_passwords_in_urls_are_masked(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[llm.providers.ollama]\napi_base = "https://rk:Hunter2-pw@llm.internal/v1"\n'
        '[tracing]\nendpoint = "https://otel.internal/v1/traces?token=tok-123"\n'
    )
    settings = load_settings(cfg, environ={})
    text = to_toml(settings) + json.dumps(masked_dict(settings))
    assert "Hunter2-pw" not in text and "tok-123" not in text
    shown = tomllib.loads(to_toml(settings))
    assert shown["llm"]["providers"]["ollama"]["api_base"] == "https://rk:********@llm.internal/v1"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://u:pw@h/v1", "https://u:********@h/v1"),
        ("redis://:pw@redis:6379/0", "redis://:********@redis:6379/0"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:********@h/db"),  # an unescaped "@" in it
        ("postgresql://u:pw@[::1/db", "postgresql://u:********@[::1/db"),  # no parser takes this
        ('bad URI: "postgresql://u:pw@h:x/db"\n', 'bad URI: "postgresql://u:********@h:x/db"\n'),
        ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=********"),
        ("https://h/v1?api_key=k1&x=1", "https://h/v1?api_key=********&x=1"),
        ("https://user@h/v1", "https://user@h/v1"),
        ("https://h:8080/v1", "https://h:8080/v1"),
        ("no url here: a=b", "no url here: a=b"),
    ],
)
def test_mask_url(text, masked):
    assert mask_url(text) == masked
