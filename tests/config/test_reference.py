"""reasonkit.config.reference: `rk config init` and `rk config reference` document every setting once."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from reasonkit.config import (
    LocalModelSettings,
    Settings,
    default_config_text,
    load_settings,
    reference_markdown,
)

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- BEGIN GENERATED: rk config reference -->\n", "<!-- END GENERATED -->"


def schema_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Every setting of the schema as a dotted key, found independently of the module under test."""
    for name, field in model.model_fields.items():
        if name == "source_file":
            continue
        annotation, args = field.annotation, typing.get_args(field.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from schema_keys(annotation, f"{prefix}{name}.")
        elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
            yield from schema_keys(args[-1], f"{prefix}{name}.<name>.")
        else:
            yield prefix + name


def test_schema_keys_sanity():
    keys = list(schema_keys())
    assert len(keys) > 60
    for key in (
        "env",
        "llm.output_mode",
        "llm.local.n_ctx",
        "llm.providers.<name>.output_mode",
        "llm.prices",
    ):
        assert key in keys


def markdown_keys(text: str) -> Counter[str]:
    keys: Counter[str] = Counter()
    table = ""
    for line in text.splitlines():
        if header := re.match(r"^### (?:`\[(.+)\]`|top level)$", line):
            table = f"{header[1]}." if header[1] else ""
        elif row := re.match(r"^\| `(\w+)` \|", line):
            keys[table + row[1]] += 1
    return keys


def config_text_keys(text: str) -> Counter[str]:
    keys: Counter[str] = Counter()
    table = ""
    for line in text.splitlines():
        if header := re.match(r"^(?:# )?\[([^\]]+)\]$", line):
            table = f"{header[1]}."
        elif key := re.match(r"^(?:# )?([a-z_]+) = ", line):
            keys[table + key[1]] += 1
    return keys


def test_reference_covers_every_setting_exactly_once():
    assert markdown_keys(reference_markdown()) == Counter(schema_keys())


def test_default_config_covers_every_setting_exactly_once():
    assert config_text_keys(default_config_text()) == Counter(schema_keys())


def test_default_config_round_trips(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(default_config_text())
    assert load_settings(cfg, environ={}).model_dump() == Settings().model_dump()


def test_descriptions_and_environment_variables_are_shown():
    text, markdown = default_config_text(), reference_markdown()
    threads = (
        "# CPU threads; unset: llama.cpp's default (half the logical CPUs, at least 1). Env: LOCAL_N_THREADS."
    )
    assert threads in text
    assert re.search(r"^\| `n_gpu_layers` \| int \| `0` \| `LOCAL_N_GPU_LAYERS` \| .*-1: all", markdown, re.M)
    # [llm.providers.<name>] names the variable and the provider it sets
    assert "`OPENAI_API_KEY` (openai)" in markdown and "OPENROUTER_API_KEY (openrouter)" in text
    assert "# [llm.providers.<name>]" in text  # commented out: <name> is not a table name
    for key, field in LocalModelSettings.model_fields.items():
        assert field.description and field.description in markdown, key


def test_docs_configuration_reference_is_generated_from_the_model():
    doc = (REPO / "docs" / "configuration.md").read_text()
    start = doc.index(BEGIN) + len(BEGIN)
    end = doc.index(END)
    assert doc[start:end] == reference_markdown(), (
        "docs/configuration.md is stale: regenerate with `rk config reference`"
    )


def test_cli_config_init(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    path = tmp_path / "x" / "config.toml"
    command = [sys.executable, "-m", "reasonkit.cli", "config", "init", str(path)]
    init = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert init.returncode == 0 and path.read_text() == default_config_text(), init.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr


def test_every_commented_key_of_config_init_is_a_valid_example(tmp_path):
    """Uncommenting any key of `rk config init`'s file (here: all of them at once, the named provider
    table with a real name) gives valid TOML and valid settings."""
    import tomllib

    from reasonkit.config import load_settings

    text = default_config_text()
    assert not re.search(r"^# ?[a-z_]+ = *$", text, re.M), "a key without a value"
    uncommented = []
    for line in text.splitlines():
        match = re.match(r"^# ((\[llm\.providers\.<name>\])|([a-z_]+ = .+))$", line)
        uncommented.append(match.group(1).replace("<name>", "ollama") if match else line)
    path = tmp_path / "config.toml"
    path.write_text("\n".join(uncommented))
    tomllib.loads(path.read_text())
    settings = load_settings(str(path), environ={})
    assert settings.llm.providers["ollama"].api_base == "http://127.0.0.1:11434/v1"
    assert settings.llm.prices["my-model"]["output"] == 2.0 and settings.storage.max_runs == 10000
