"""Layered loading: built-in defaults < TOML file < environment < CLI flags.

The TOML file is the first that exists of: ``--config PATH``, ``$REASONKIT_CONFIG``,
``/app/config/default.toml`` (containers), ``~/.config/reasonkit/config.toml``.
Environment variable names follow the deployment guide (see ``ENV_VARS``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonkit.config.schema import Settings
from reasonkit.errors import ConfigError
from reasonkit.tomlfile import TomlFileError, read_toml

# Environment variable -> dotted settings key. This table is the only place the code reads settings
# from the environment (plus the SDK variables read in providers/), so docs can be checked against it.
ENV_VARS: dict[str, str] = {
    "ANTHROPIC_API_KEY": "llm.providers.anthropic.api_key",
    "OPENAI_API_KEY": "llm.providers.openai.api_key",
    "OPENROUTER_API_KEY": "llm.providers.openrouter.api_key",
    "ANTHROPIC_BASE_URL": "llm.providers.anthropic.api_base",
    "OPENAI_BASE_URL": "llm.providers.openai.api_base",
    "LLM_DEFAULT_PROVIDER": "llm.default_provider",
    "LLM_DEFAULT_MODEL": "llm.default_model",
    "LLM_FALLBACK_PROVIDER": "llm.fallback_provider",
    "LLM_TEMPERATURE": "llm.temperature",
    "LLM_MAX_TOKENS": "llm.max_tokens",
    "LOCAL_MODEL_PATH": "llm.local.model_path",
    "LOCAL_N_CTX": "llm.local.n_ctx",
    "LOCAL_N_THREADS": "llm.local.n_threads",
    "LOCAL_N_GPU_LAYERS": "llm.local.n_gpu_layers",
    "LOCAL_MODEL_AUTO": "llm.local.auto",
    "SERVER_HOST": "server.host",
    "SERVER_PORT": "server.port",
    "SERVER_WORKERS": "server.workers",
    "METRICS_PORT": "server.metrics_port",
    "REDIS_URL": "database.redis.url",
    "ENABLE_METRICS": "features.metrics",
    "ENABLE_CACHE": "features.cache",
    "REASONKIT_ENV": "env",
    "REASONKIT_DATA_DIR": "storage.data_dir",
    "LOG_LEVEL": "logging.level",
    "LOG_FORMAT": "logging.format",
    "RUST_LOG": "logging.level",
    "REASONKIT_AUTH_TOKENS_FILE": "security.auth_tokens_file",
    "REASONKIT_ALLOW_UNAUTHENTICATED": "security.allow_unauthenticated_remote",
    "REASONKIT_ALLOWED_HOSTS": "security.allowed_hosts",
    "REASONKIT_ALLOWED_ORIGINS": "security.allowed_origins",
}
# Read directly (not settings keys): REASONKIT_CONFIG (which file), REASONKIT_AUTH_TOKENS (secrets).
OTHER_ENV_VARS = ("REASONKIT_CONFIG", "REASONKIT_AUTH_TOKENS")

DEFAULT_CONFIG_PATHS = (
    Path("/app/config/default.toml"),
    Path("~/.config/reasonkit/config.toml"),
)


def env_vars_by_key() -> dict[str, list[str]]:
    """Dotted settings key -> the environment variables that set it, in `ENV_VARS` order."""
    by_key: dict[str, list[str]] = {}
    for name, key in ENV_VARS.items():
        by_key.setdefault(key, []).append(name)
    return by_key


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = tree.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"'{part}' must be a table to hold '{dotted}'")
        tree = nxt
    tree[parts[-1]] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _rust_log_level(value: str) -> str:
    # RUST_LOG may be "info" or "reasonkit=debug,hyper=warn": take reasonkit's level or the bare one.
    bare = None
    for part in value.split(","):
        part = part.strip()
        if "=" in part:
            target, level = part.split("=", 1)
            if target.strip() in ("reasonkit", "reasonkit_mcp"):
                return level.strip()
        elif part:
            bare = part
    return bare or "info"


def _env_layer(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    # RUST_LOG is an alias only: LOG_LEVEL wins when both are set.
    for name in sorted(ENV_VARS, key=lambda n: n != "RUST_LOG"):
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        value: Any = raw
        key = ENV_VARS[name]
        if name == "RUST_LOG":
            value = _rust_log_level(raw)
        elif key.startswith("features."):
            value = raw.strip().lower() in ("1", "true", "yes", "on")
        _set(tree, key, value)
    return tree


def find_config_file(explicit: str | Path | None, environ: dict[str, str]) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    if environ.get("REASONKIT_CONFIG"):
        path = Path(environ["REASONKIT_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"REASONKIT_CONFIG points to {path}, which does not exist")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        path = candidate.expanduser()
        if path.is_file():
            return path
    return None


def describe_validation_error(err: ValidationError, origin: str) -> str:
    """One line per problem: the dotted key, its environment variable where one exists, the reason."""
    env_by_key = {key: names[0] for key, names in env_vars_by_key().items()}
    lines = []
    for error in err.errors():
        key = ".".join(str(part) for part in error["loc"])
        hint = f" (environment variable {env_by_key[key]})" if key in env_by_key else ""
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{key}{hint}: {message}")
    return f"invalid settings from {origin}:\n  " + "\n  ".join(lines)


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build the effective settings. `overrides` are dotted keys from CLI flags (None values ignored)."""
    env = dict(os.environ if environ is None else environ)
    path = find_config_file(config_file, env)
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = read_toml(path)
        except TomlFileError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        try:
            Settings.model_validate(tree)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, str(path))) from None
    tree = _merge(tree, _env_layer(env))
    flag_tree: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(flag_tree, key, value)
    tree = _merge(tree, flag_tree)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "the environment / command line")) from None
    settings.source_file = str(path) if path else None
    return settings
