"""reasonkit.config.schema: defaults, bounds and the deprecated `structured_output` alias."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reasonkit.config import (
    LLMSettings,
    LocalModelSettings,
    ProviderSettings,
    SecuritySettings,
    Settings,
    load_settings,
)
from reasonkit.errors import ConfigError


def test_new_llm_settings_defaults():
    llm = Settings().llm
    assert llm.output_mode == "auto"
    assert ProviderSettings().output_mode is None
    local = llm.local
    assert (local.model_path, local.n_ctx, local.n_threads, local.n_gpu_layers) == (None, 4096, None, 0)
    assert (local.contexts, local.repeat_penalty) == (1, 1.3)
    assert (local.max_items, local.max_tokens, local.samples) == (4, 384, 1)


@pytest.mark.parametrize(
    "field, bad",
    [("n_ctx", 255), ("n_threads", 0), ("n_gpu_layers", -2), ("contexts", 0), ("contexts", 9)]
    + [("max_items", -1), ("max_tokens", -1), ("samples", -1), ("repeat_penalty", 0)],
)
def test_local_model_bounds(field, bad):
    with pytest.raises(ValidationError, match=field):
        LocalModelSettings(**{field: bad})


@pytest.mark.parametrize(
    "field, good", [("n_ctx", 256), ("n_gpu_layers", -1), ("contexts", 8), ("max_items", 0)]
)
def test_local_model_edges_accepted(field, good):
    assert getattr(LocalModelSettings(**{field: good}), field) == good


def test_output_mode_values():
    for mode in ("auto", "json_schema", "json_object", "tools", "prompt"):
        assert Settings.model_validate({"llm": {"output_mode": mode}}).llm.output_mode == mode
    with pytest.raises(ValidationError, match="output_mode"):
        Settings.model_validate({"llm": {"output_mode": "native"}})
    with pytest.raises(ValidationError, match="output_mode"):
        ProviderSettings(output_mode="json_text")


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"structured_output": "json_text"}, "prompt"),
        ({"structured_output": "json_text", "kind": "anthropic"}, "prompt"),
        ({"structured_output": "native", "kind": "openai"}, "json_schema"),
        ({"structured_output": "native"}, "json_schema"),  # kind from the name: OpenAI-compatible
        ({"structured_output": "native", "kind": "anthropic"}, None),  # always a forced tool
        ({"structured_output": "auto"}, None),
        ({}, None),
        ({"structured_output": "json_text", "output_mode": "tools"}, "tools"),  # explicit wins
        ({"structured_output": "native", "output_mode": "auto"}, "auto"),
    ],
)
def test_structured_output_is_a_deprecated_alias_of_output_mode(given, expected):
    provider = ProviderSettings.model_validate(given)
    assert provider.output_mode == expected
    assert provider.structured_output == given.get("structured_output", "auto")  # still readable


def test_alias_mapping_from_a_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[llm]\noutput_mode = "json_object"\n'
        '[llm.providers.ollama]\nkind = "openai"\napi_base = "http://127.0.0.1:11434/v1"\n'
        'structured_output = "json_text"\n'
        '[llm.providers.vllm]\nkind = "openai"\napi_base = "http://gpu:8000/v1"\n'
    )
    llm = load_settings(cfg, environ={}).llm
    assert llm.output_mode == "json_object"
    assert llm.providers["ollama"].output_mode == "prompt"
    assert llm.providers["vllm"].output_mode is None  # None: use [llm] output_mode


def test_unknown_structured_output_is_still_rejected(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm.providers.x]\nstructured_output = "jsontext"\n')
    with pytest.raises(ConfigError, match="llm.providers.x.structured_output"):
        load_settings(cfg, environ={})


def test_local_is_a_documented_default_provider():
    assert Settings.model_validate({"llm": {"default_provider": "local"}}).llm.default_provider == "local"
    assert "local" in (LLMSettings.model_fields["default_provider"].description or "")


def test_comma_separated_lists():
    assert Settings.model_validate({"llm": {"fallback_provider": "a, b,,c"}}).llm.fallback_provider == [
        "a",
        "b",
        "c",
    ]
    security = SecuritySettings(allowed_hosts="x.example, *.y.example", allowed_origins=["https://a"])
    assert security.allowed_hosts == ["x.example", "*.y.example"]
    assert security.allowed_origins == ["https://a"]


def test_sections_forbid_unknown_keys_and_check_assignments():
    with pytest.raises(ValidationError, match="n_ctxx"):
        Settings.model_validate({"llm": {"local": {"n_ctxx": 1}}})
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.llm.local.contexts = 0


def test_data_dir(tmp_path):
    settings = Settings.model_validate({"storage": {"data_dir": str(tmp_path / "d")}})
    assert settings.data_dir() == tmp_path / "d"
    assert Settings().data_dir().name == "reasonkit"
