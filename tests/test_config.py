import json
import subprocess
import sys

import pytest

from reasonkit.config import ConfigError, default_config_text, load_settings, masked_dict, to_toml


def test_layers_defaults_file_env_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm]\ntemperature = 0.1\nmax_tokens = 1000\n[server]\nport = 9200\n')
    env = {"LLM_MAX_TOKENS": "1500", "SERVER_PORT": "9300", "RUST_LOG": "reasonkit=debug,hyper=warn"}
    s = load_settings(cfg, {"server.port": 9400}, environ=env)
    assert s.llm.temperature == 0.1  # file over default
    assert s.llm.max_tokens == 1500  # env over file
    assert s.server.port == 9400  # flag over env
    assert s.logging.level == "debug"  # RUST_LOG alias
    assert load_settings(environ={"RUST_LOG": "warn", "LOG_LEVEL": "error"}).logging.level == "error"
    assert load_settings(environ={"ENABLE_METRICS": "false"}).features.metrics is False


def test_config_errors_name_the_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[llm]\ntemprature = 0.1\n")
    with pytest.raises(ConfigError, match="llm.temprature: unknown setting"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match="environment variable SERVER_PORT"):
        load_settings(environ={"SERVER_PORT": "abc"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"REASONKIT_CONFIG": str(tmp_path / "none.toml")})
    cfg.write_text("[llm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})


def test_secrets_are_masked():
    s = load_settings(environ={"OPENAI_API_KEY": "sk-supersecret-123", "REDIS_URL": "redis://:pw@host/0"})
    text = to_toml(s) + json.dumps(masked_dict(s))
    assert "sk-supersecret-123" not in text and "pw@host" not in text
    assert masked_dict(s)["llm"]["providers"]["openai"]["api_key"] == "********"


def test_default_config_round_trips(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(default_config_text())
    assert load_settings(cfg, environ={}).server.port == 9100


def test_cli_config_show_and_init(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": "sk-hidden-999"}
    show = subprocess.run([sys.executable, "-m", "reasonkit.cli", "config", "show"], capture_output=True, text=True, env=env, timeout=60)
    assert show.returncode == 0 and "sk-hidden-999" not in show.stdout + show.stderr and "********" in show.stdout
    path = tmp_path / "x" / "config.toml"
    init = subprocess.run([sys.executable, "-m", "reasonkit.cli", "config", "init", str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert init.returncode == 0 and path.exists()
    again = subprocess.run([sys.executable, "-m", "reasonkit.cli", "config", "init", str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr


def test_docs_configuration_reference_is_generated_from_the_model():
    from pathlib import Path

    from reasonkit.config import reference_markdown

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    start = doc.index("<!-- BEGIN GENERATED: rk config reference -->\n") + len("<!-- BEGIN GENERATED: rk config reference -->\n")
    end = doc.index("<!-- END GENERATED -->")
    assert doc[start:end] == reference_markdown(), "docs/configuration.md is stale: regenerate with `rk config reference`"
