"""Layered loading: built-in defaults < TOML file < environment < CLI flags.

The TOML file is the first that exists of: ``--config PATH``, ``$REASONKIT_CONFIG``,
``/app/config/default.toml`` (containers), ``~/.config/reasonkit/config.toml``.
Environment variable names follow the deployment guide (see ``ENV_VARS``).
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reasonkit import provider_kinds
from reasonkit.config import compat
from reasonkit.config.schema import NOT_SETTINGS, Settings
from reasonkit.errors import ConfigError, TomlFileError
from reasonkit.tomlfile import read_toml

__all__ = [
    "ALIAS_ENV_VARS",
    "DEFAULT_CONFIG_PATHS",
    "ENV_VARS",
    "OTHER_ENV_VARS",
    "SETTINGS_ENV_VARS",
    "describe_validation_error",
    "env_vars",
    "env_vars_by_key",
    "find_config_file",
    "load_settings",
]

# Environment variable -> dotted settings key, besides the provider kinds' own (key and base URL,
# from reasonkit/provider_kinds.py). `env_vars()` joins both; it and the SDK variables read in
# providers/ are the only places the code reads settings from the environment.
SETTINGS_ENV_VARS: dict[str, str] = {
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
    "ENABLE_TRACING": "features.tracing",
    "OTLP_ENDPOINT": "tracing.endpoint",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "tracing.endpoint",
    "IDEMPOTENCY_TTL": "server.idempotency_ttl_secs",
    "L1_CACHE_SIZE": "llm.cache.max_entries",
    "L2_TTL_SECONDS": "llm.cache.ttl_secs",
    "REASONKIT_ENV": "env",
    "REASONKIT_DATA_DIR": "storage.data_dir",
    "REASONKIT_DATABASE_URL": "storage.url",
    "LOG_LEVEL": "logging.level",
    "LOG_FORMAT": "logging.format",
    "RUST_LOG": "logging.level",
    "REASONKIT_AUTH_TOKENS_FILE": "security.auth_tokens_file",
    "REASONKIT_ALLOW_UNAUTHENTICATED": "security.allow_unauthenticated_remote",
    "REASONKIT_ALLOWED_HOSTS": "security.allowed_hosts",
    "REASONKIT_ALLOWED_ORIGINS": "security.allowed_origins",
    "REASONKIT_ADMIN_PRINCIPALS": "server.admin_principals",
    "REASONKIT_MAX_RUNS_PER_PRINCIPAL": "server.max_runs_per_principal",
    "REASONKIT_OAUTH_ISSUER": "server.oauth.issuer",
    "REASONKIT_OAUTH_AUDIENCE": "server.oauth.audience",
    "REASONKIT_OAUTH_ACCEPTED_AUDIENCES": "server.oauth.accepted_audiences",
    "REASONKIT_OAUTH_REQUIRED_SCOPES": "server.oauth.required_scopes",
    "REASONKIT_OAUTH_ADMIN_SCOPE": "server.oauth.admin_scope",
    "REASONKIT_CONFIRM_ABOVE_USD": "server.confirm_above_usd",
    "REASONKIT_CONFIRM_UNSUPPORTED": "server.confirm_unsupported",
}


def env_vars() -> dict[str, str]:
    """Environment variable -> dotted settings key: the provider kinds' variables (read from the
    registry at each call, so a new kind row needs no edit here), then the others."""
    return {**provider_kinds.env_vars(), **SETTINGS_ENV_VARS}


# The whole table as of import, for the docs and the checks that compare deployment files with it.
ENV_VARS: dict[str, str] = env_vars()
# Aliases: read first, so the other name of the same key wins when both are set.
ALIAS_ENV_VARS = ("RUST_LOG", "OTLP_ENDPOINT")
# Read directly (not settings keys): REASONKIT_CONFIG (which file), REASONKIT_AUTH_TOKENS (secrets),
# and the deployment guide's variables that reasonkit.config.compat maps or explains.
OTHER_ENV_VARS = ("REASONKIT_CONFIG", "REASONKIT_AUTH_TOKENS", *compat.GUIDE_ENV_VARS)

DEFAULT_CONFIG_PATHS = (
    Path("/app/config/default.toml"),
    Path("~/.config/reasonkit/config.toml"),
)


def env_vars_by_key() -> dict[str, list[str]]:
    """Dotted settings key -> the environment variables that set it, in `env_vars()` order."""
    by_key: dict[str, list[str]] = {}
    for name, key in env_vars().items():
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
    table = env_vars()
    # RUST_LOG and OTLP_ENDPOINT are aliases only: LOG_LEVEL / OTEL_EXPORTER_OTLP_ENDPOINT win.
    for name in sorted(table, key=lambda n: n not in ALIAS_ENV_VARS):
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        value: Any = raw
        key = table[name]
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


def _table_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at `loc` accepts (ours and the deployment guide's), for "did you mean"."""
    model: Any = Settings
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            info = model.model_fields.get(str(part))
            if info is None:
                return []
            model = info.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]  # a name under e.g. [llm.providers]
        else:
            return []
        args = [a for a in typing.get_args(model) if a is not type(None)]
        if typing.get_origin(model) is not dict and len(args) == 1:
            model = args[0]  # X | None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    prefix = ".".join(str(p) for p in loc)
    guide = [k.rsplit(".", 1)[1] for k in compat.FILE_KEYS if k.rsplit(".", 1)[0] == prefix]
    if prefix == "llm.rate_limiting":
        guide += list(compat.PROVIDER_KEYS)
    return [k for k in model.model_fields if k not in NOT_SETTINGS] + guide


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    if not loc:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), _table_keys(loc[:-1]), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe_validation_error(err: ValidationError, origin: str) -> str:
    """One line per problem: the dotted key, its environment variable where one exists, the reason;
    an unknown key gets the closest known key of its table as a "did you mean"."""
    env_by_key = {key: names[0] for key, names in env_vars_by_key().items()}
    lines = []
    for error in err.errors():
        key = ".".join(str(part) for part in error["loc"])
        hint = f" (environment variable {env_by_key[key]})" if key in env_by_key else ""
        if error["type"] == "extra_forbidden":
            message = "unknown setting" + _did_you_mean(tuple(error["loc"]))
        else:
            message = error["msg"]
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
    from_file = compat.Translation()
    if path is not None:
        try:
            raw = read_toml(path)
        except TomlFileError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        from_file = compat.translate_file(raw, str(path))  # the deployment guide's keys, as ours
        tree = from_file.tree
        try:
            Settings.model_validate(tree)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, str(path))) from None
    from_env = compat.translate_env(env)
    tree = _merge(_merge(tree, _env_layer(env)), from_env.tree)
    flag_tree: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(flag_tree, key, value)
    tree = _merge(tree, flag_tree)
    compat.finish(tree, from_file.providers, from_env.providers)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "the environment / command line")) from None
    settings.source_file = str(path) if path else None
    settings.compat_notes.extend(from_file.notes + from_env.notes)
    return settings
