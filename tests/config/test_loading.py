"""reasonkit.config.loading: defaults < TOML file < environment < CLI flags, and its error messages."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from reasonkit.config import ENV_VARS, Settings, find_config_file, load_settings
from reasonkit.errors import ConfigError


def test_layers_defaults_file_env_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[llm]\ntemperature = 0.1\nmax_tokens = 1000\n[server]\nport = 9200\n")
    env = {"LLM_MAX_TOKENS": "1500", "SERVER_PORT": "9300", "RUST_LOG": "reasonkit=debug,hyper=warn"}
    settings = load_settings(cfg, {"server.port": 9400}, environ=env)
    assert settings.llm.temperature == 0.1  # file over default
    assert settings.llm.max_tokens == 1500  # env over file
    assert settings.server.port == 9400  # flag over env
    assert settings.logging.level == "debug"  # RUST_LOG alias
    assert settings.source_file == str(cfg)
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


def test_local_model_environment_variables(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm.local]\nmodel_path = "/from/file.gguf"\nn_ctx = 1024\ncontexts = 2\n')
    env = {
        "LOCAL_MODEL_PATH": "/models/qwen.gguf",
        "LOCAL_N_CTX": "8192",
        "LOCAL_N_THREADS": "6",
        "LOCAL_N_GPU_LAYERS": "-1",
    }
    local = load_settings(cfg, environ=env).llm.local
    assert local.model_path == "/models/qwen.gguf"  # env over file
    assert (local.n_ctx, local.n_threads, local.n_gpu_layers) == (8192, 6, -1)
    assert local.contexts == 2  # from the file: no variable for it
    # an empty variable is unset, as for every other variable
    assert load_settings(environ={"LOCAL_N_THREADS": ""}).llm.local.n_threads is None
    flags = load_settings(environ={"LOCAL_N_CTX": "2048"}, overrides={"llm.local.n_ctx": 512})
    assert flags.llm.local.n_ctx == 512


def test_local_model_environment_errors_name_the_variable():
    with pytest.raises(ConfigError, match=r"llm\.local\.n_ctx \(environment variable LOCAL_N_CTX\)"):
        load_settings(environ={"LOCAL_N_CTX": "100"})
    with pytest.raises(ConfigError, match="environment variable LOCAL_N_GPU_LAYERS"):
        load_settings(environ={"LOCAL_N_GPU_LAYERS": "all"})


def test_every_environment_variable_names_a_real_setting():
    # A typo in ENV_VARS would only show up when someone sets that variable.
    for name, key in ENV_VARS.items():
        model: type[BaseModel] = Settings
        parts = key.split(".")
        while len(parts) > 1:
            annotation = model.model_fields[parts.pop(0)].annotation
            if typing.get_origin(annotation) is dict:  # [llm.providers.<name>]
                annotation = typing.get_args(annotation)[1]
                parts.pop(0)
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel), key
            model = annotation
        assert parts[0] in model.model_fields, f"{name} -> {key}"


def test_find_config_file_order(tmp_path):
    explicit, from_env = tmp_path / "a.toml", tmp_path / "b.toml"
    explicit.write_text("")
    from_env.write_text("")
    assert find_config_file(explicit, {"REASONKIT_CONFIG": str(from_env)}) == explicit
    assert find_config_file(None, {"REASONKIT_CONFIG": str(from_env)}) == from_env
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_file(tmp_path / "missing.toml", {})


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"\xff\xfe\x00garbage", "byte 0xff at position 0: invalid start byte"),
        (b'[llm]\ndefault_model = "caf\xc3', "byte 0xc3 at position 26: unexpected end of data"),  # cut
    ],
)
def test_undecodable_config_file_is_a_config_error_naming_it(tmp_path, content, detail):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(content)
    for kwargs in ({"config_file": cfg, "environ": {}}, {"environ": {"REASONKIT_CONFIG": str(cfg)}}):
        with pytest.raises(ConfigError) as err:
            load_settings(**kwargs)
        assert str(err.value).startswith(f"{cfg}: not valid UTF-8 (")
        assert detail in str(err.value)


def test_binary_or_deeply_nested_config_file_is_a_config_error(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b"\x00\x01\x02ELF")  # valid UTF-8, but control characters
    with pytest.raises(ConfigError, match="config.toml: not valid TOML"):
        load_settings(cfg, environ={})
    cfg.write_text("a = " + "[" * 5000)
    with pytest.raises(ConfigError, match="config.toml: not valid TOML: nested too deeply"):
        load_settings(cfg, environ={})
