"""Settings: built-in defaults < TOML file < environment < CLI flags.

The TOML file is the first that exists of: ``--config PATH``, ``$REASONKIT_CONFIG``,
``/app/config/default.toml`` (containers), ``~/.config/reasonkit/config.toml``.
Environment variable names follow the deployment guide (see ``ENV_VARS``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from reasonkit.errors import ConfigError  # noqa: F401 - re-exported


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface for `rk serve-mcp --port` (HTTP mode).")
    port: int = Field(9100, ge=1, le=65535, description="Port of the streamable HTTP MCP endpoint.")
    workers: int = Field(
        1, ge=1, le=64, description="Accepted for compatibility with the deployment guide and ignored (a warning is logged): one `rk serve-mcp` is one process; scale with replicas."
    )
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Side HTTP port for /metrics and /health.")
    tool_deadline_secs: float = Field(50.0, gt=0, description="Default deadline of one MCP tool call; a partial result is returned when it passes.")
    shutdown_grace_secs: float = Field(20.0, ge=0, description="How long in-flight calls may finish after SIGTERM.")
    stateless_http: bool = Field(True, description="Stateless streamable HTTP (any replica can answer any request).")


class LoggingSettings(_Section):
    level: str = Field("info", description="trace, debug, info, warning, error.")
    format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per line.")
    file: str | None = Field(None, description="Also write logs to this file.")


class ProviderSettings(_Section):
    api_key: SecretStr | None = Field(None, description="API key; prefer the environment variable.")
    api_base: str | None = Field(None, description="Base URL (OpenAI-compatible servers: Ollama, vLLM, llama.cpp).")
    model: str | None = Field(None, description="Model for this provider when it is not the default one.")
    kind: Literal["anthropic", "openai"] | None = Field(None, description="Wire format; inferred from the provider name when unset.")
    structured_output: Literal["auto", "native", "json_text"] = Field(
        "auto", description="`native`: json_schema / forced tool; `json_text`: ask for JSON in text (servers without schema support)."
    )
    timeout_secs: float = Field(
        120.0, gt=0, description="Per-attempt timeout: the whole reply must arrive within it (a slow trickle counts too); a timeout is retried."
    )
    max_retries: int = Field(3, ge=0, le=10, description="Retries for 429, 5xx, timeouts and connection errors.")
    retry_base_delay_secs: float = Field(
        0.5, ge=0, description="First retry backoff; it doubles per retry, with full jitter. A `Retry-After` from the server is used instead."
    )
    retry_max_delay_secs: float = Field(
        20.0, ge=0, description="Longest wait before a retry. A `Retry-After` longer than this is not waited for: the provider fails at once and the fallback chain moves on."
    )
    breaker_threshold: int = Field(
        3, ge=0, description="Consecutive failed calls (after their retries; only 429, 5xx, timeouts, connection and malformed replies count) that open this provider's circuit breaker. 0 turns the breaker off."
    )
    breaker_cooldown_secs: float = Field(
        60.0, gt=0, description="How long an open breaker refuses calls before letting one trial call through (half-open)."
    )
    requests_per_minute: int | None = Field(
        None, ge=1, description="Client-side rate limit for this provider; overrides `[llm.rate_limiting] requests_per_minute`."
    )


class RateLimitSettings(_Section):
    requests_per_minute: int | None = Field(None, ge=1, description="Client-side request rate per provider (each provider has its own budget); unset: no limit.")
    burst: int = Field(1, ge=1, description="Calls a provider may start back to back before `requests_per_minute` pacing applies.")
    strategy: Literal["queue", "drop", "fallback"] = Field(
        "queue",
        description="When the limit is hit: `queue` waits for a slot (at most `queue_size` calls wait; beyond that a call fails), `drop` fails at once, `fallback` goes to the next provider of `fallback_provider` (fails when there is none).",
    )
    queue_size: int = Field(100, ge=0, description="Waiting calls allowed with strategy `queue`.")


class CacheSettings(_Section):
    ttl_secs: float = Field(3600.0, gt=0, description="How long a cached reply is served (memory and Redis).")
    max_entries: int = Field(1000, ge=0, description="Replies kept in the in-memory LRU cache (per process); 0: no memory layer.")
    cache_nondeterministic: bool = Field(
        False,
        description="Also cache requests with temperature > 0 (or no temperature). Off by default: such replies are samples, and repeated samples (agreement checks) would all get the same answer.",
    )


class LLMSettings(_Section):
    default_provider: str | None = Field(None, description="anthropic, openai, openrouter, or a name under [llm.providers].")
    default_model: str | None = Field(None, description="Model id; each provider has a sensible default.")
    temperature: float = Field(0.3, ge=0.0, le=2.0, description="Default sampling temperature.")
    max_tokens: int = Field(2048, ge=16, description="Default max output tokens per step.")
    fallback_provider: list[str] = Field(
        default_factory=list,
        description="Providers to try, in order, when the default one's breaker is open, it exhausted its retries, or (strategy `fallback`) its rate limit is reached. A single name is accepted too.",
    )
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    rate_limiting: RateLimitSettings = Field(default_factory=RateLimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)

    @field_validator("fallback_provider", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        # `fallback_provider = "openai"` and LLM_FALLBACK_PROVIDER="openai,openrouter" are accepted too.
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Price overrides: model -> {input, output, cache_read, cache_write} in USD per million tokens."
    )


class RedisSettings(_Section):
    url: SecretStr | None = Field(None, description="redis://host:6379/0 (may carry a password). With `features.cache` on, the response cache is shared through it.")
    timeout_secs: float = Field(0.5, gt=0, description="Connect and command timeout of the cache's Redis calls; a slower Redis counts as down.")
    retry_secs: float = Field(5.0, gt=0, description="After a Redis error the cache uses memory only for this long, then tries Redis again.")
    key_prefix: str = Field("reasonkit:cache:", description="Prefix of the cache's Redis keys.")


class DatabaseSettings(_Section):
    redis: RedisSettings = Field(default_factory=RedisSettings)


class FeatureSettings(_Section):
    metrics: bool = Field(True, description="Serve /metrics.")
    cache: bool = Field(True, description="Response cache: in memory, plus Redis when `REDIS_URL` is set (see `[llm.cache]`).")
    sampling: bool = Field(False, description="Allow the MCP client's model (sampling) as a provider.")


class SecuritySettings(_Section):
    auth_tokens_file: str | None = Field(
        None,
        description="File with the bearer tokens HTTP clients must send (`Authorization: Bearer <token>`), one per line; blank lines and lines starting with `#` are ignored. Combined with `REASONKIT_AUTH_TOKENS` (comma-separated). Re-read on SIGHUP.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (`https://app.example.com`, `http://host:*` for any port, `*` for any) allowed to call the HTTP server. Requests without an `Origin` header (non-browser clients) are always allowed; loopback binds also allow local origins. Comma-separated in the environment.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="`Host` header values the HTTP server answers to (DNS-rebinding protection): `name`, `name:port`, `name:*` or `*.domain`. Loopback binds always allow localhost and loopback addresses (127.0.0.0/8, [::1]). On other binds an empty list accepts any Host (a warning is logged); when set, IP-address hosts are accepted too. Comma-separated in the environment.",
    )
    allow_unauthenticated_remote: bool = Field(
        False, description="Allow serving HTTP on a non-loopback address without bearer tokens (e.g. behind an authenticating proxy). Off: `rk serve-mcp` refuses to start."
    )
    public_metrics: bool = Field(
        False,
        description="Serve `/metrics` and `/health` on the main HTTP port without a bearer token when tokens are configured. The side port (`--metrics-port`) and the probes `/health/live`, `/health/ready` never ask for one.",
    )
    max_request_size_mb: float = Field(4.0, gt=0, description="Largest accepted HTTP request body in MiB; larger requests get 413.")
    rate_limit_per_minute: int | None = Field(
        None, ge=1, description="HTTP requests per minute per client on the main port (per bearer token, else per client IP); over it: 429 with `Retry-After`. Unset: no limit."
    )

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v


class StorageSettings(_Section):
    data_dir: str | None = Field(None, description="Where runs are stored; default: a per-user data directory.")
    save_runs: bool = Field(True, description="Save every run (CLI and MCP) with its full trace in the run store.")
    retention_days: float | None = Field(None, gt=0, description="Delete stored runs older than this at start-up.")
    max_runs: int | None = Field(None, ge=1, description="Keep at most this many stored runs (oldest deleted at start-up).")


class ProtocolSettings(_Section):
    dirs: list[str] = Field(default_factory=lambda: ["~/.config/reasonkit/protocols"], description="User protocol directories.")


class EngineSettings(_Section):
    default_profile: str = Field("balanced", description="Profile used by `rk think` without --profile.")
    max_concurrency: int = Field(16, ge=1, le=256, description="LLM calls (steps, for_each items, samples) in flight at once per run; 16 lets GigaThink explore its 10-12 perspectives in one wave.")
    budget_secs: float | None = Field(None, gt=0, description="Default time budget of a run.")
    budget_tokens: int | None = Field(None, ge=1, description="Default token budget of a run.")
    budget_usd: float | None = Field(None, gt=0, description="Default cost budget of a run.")


class Settings(_Section):
    env: str = Field("development", description="development or production (REASONKIT_ENV).")
    server: ServerSettings = Field(default_factory=ServerSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    protocols: ProtocolSettings = Field(default_factory=ProtocolSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    # Where the settings came from (file path), for `rk config show`.
    source_file: str | None = Field(None, exclude=True)

    def data_dir(self) -> Path:
        if self.storage.data_dir:
            return Path(self.storage.data_dir).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("reasonkit"))


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

DEFAULT_CONFIG_PATHS = (Path("/app/config/default.toml"), Path("~/.config/reasonkit/config.toml"))


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        nxt = tree.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"'{p}' must be a table to hold '{dotted}'")
        tree = nxt
    tree[parts[-1]] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
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
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        return p
    if environ.get("REASONKIT_CONFIG"):
        p = Path(environ["REASONKIT_CONFIG"]).expanduser()
        if not p.is_file():
            raise ConfigError(f"REASONKIT_CONFIG points to {p}, which does not exist")
        return p
    for cand in DEFAULT_CONFIG_PATHS:
        c = cand.expanduser()
        if c.is_file():
            return c
    return None


def _describe(err: ValidationError, origin: str) -> str:
    lines = []
    env_by_key: dict[str, str] = {}
    for name, key in ENV_VARS.items():
        env_by_key.setdefault(key, name)
    for e in err.errors():
        key = ".".join(str(x) for x in e["loc"])
        hint = f" (environment variable {env_by_key[key]})" if key in env_by_key else ""
        msg = "unknown setting" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{key}{hint}: {msg}")
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
            with path.open("rb") as fh:
                tree = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        try:
            Settings.model_validate(tree)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, str(path))) from None
    tree = _merge(tree, _env_layer(env))
    flag_tree: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(flag_tree, key, value)
    tree = _merge(tree, flag_tree)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "the environment / command line")) from None
    settings.source_file = str(path) if path else None
    return settings


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def masked_dict(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by asterisks."""
    raw = {name: getattr(settings, name) for name in Settings.model_fields if name != "source_file"}

    def walk(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return {k: walk(getattr(v, k)) for k in type(v).model_fields}
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return _mask(v)

    return {k: walk(v) for k, v in raw.items()}


def _drop_none(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_none(x) for x in v]
    return v


def to_toml(settings: Settings) -> str:
    import tomli_w

    return tomli_w.dumps(_drop_none(masked_dict(settings)))


def default_config_text() -> str:
    """A commented default config file for `rk config init`: every key with its description."""
    import tomli_w

    lines = [
        "# ReasonKit configuration. Precedence: defaults < this file < environment < CLI flags.",
        "# Keep API keys in the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY).",
        "",
    ]

    def emit(model: type[BaseModel], prefix: str) -> None:
        scalars, tables = [], []
        for name, f in model.model_fields.items():
            if name == "source_file":
                continue
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                tables.append((name, ann))
            else:
                scalars.append((name, f))
        if scalars and prefix:
            lines.append(f"[{prefix}]")
        for name, f in scalars:
            default = f.get_default(call_default_factory=True)
            env = [n for n, k in ENV_VARS.items() if k == (f"{prefix}.{name}" if prefix else name)]
            desc = (f.description or "") + (f" Env: {', '.join(env)}." if env else "")
            if desc:
                lines.append(f"# {desc.strip()}")
            if default is None or isinstance(default, SecretStr) or (isinstance(default, dict) and not default):
                lines.append(f"# {name} = ")
            else:
                lines.append(tomli_w.dumps({name: default}).strip())
        if scalars:
            lines.append("")
        for name, sub in tables:
            emit(sub, f"{prefix}.{name}" if prefix else name)

    emit(Settings, "")
    lines += [
        "# Per-provider settings, e.g. a local Ollama server (OpenAI-compatible):",
        "# [llm.providers.ollama]",
        '# kind = "openai"',
        '# api_base = "http://127.0.0.1:11434/v1"',
        '# model = "llama3.1"',
        "",
    ]
    return "\n".join(lines)


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md's generated part), from the model itself."""
    env_for: dict[str, list[str]] = {}
    for name, key in ENV_VARS.items():
        env_for.setdefault(key, []).append(name)
    out: list[str] = []

    def fmt_default(f: Any) -> str:
        d = f.get_default(call_default_factory=True)
        if d is None or (isinstance(d, dict | list) and not d):
            return ""
        if isinstance(d, str):
            return f'`"{d}"`'
        if isinstance(d, bool):
            return f"`{str(d).lower()}`"
        return f"`{d}`"

    def type_name(ann: Any) -> str:
        import typing

        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is typing.Literal:
            return " / ".join(f"`{a}`" for a in args)
        if args and origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            return " or ".join(type_name(a) for a in args if a is not type(None)) + " (optional)"
        if origin in (list, dict):
            return f"{origin.__name__} of {', '.join(type_name(a) for a in args)}"
        return getattr(ann, "__name__", str(ann)).replace("SecretStr", "secret string")

    def emit(model: type[BaseModel], prefix: str) -> None:
        rows, subs = [], []
        for name, f in model.model_fields.items():
            if name == "source_file":
                continue
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                subs.append((name, ann))
                continue
            key = f"{prefix}.{name}" if prefix else name
            envs = ", ".join(f"`{e}`" for e in env_for.get(key, []))
            rows.append(f"| `{name}` | {type_name(ann)} | {fmt_default(f)} | {envs} | {f.description or ''} |")
        if rows:
            out.append(f"### `[{prefix}]`" if prefix else "### top level")
            out.append("")
            out.append("| key | type | default | environment | meaning |")
            out.append("|---|---|---|---|---|")
            out.extend(rows)
            out.append("")
        for name, sub in subs:
            emit(sub, f"{prefix}.{name}" if prefix else name)

    emit(Settings, "")
    out.append("### `[llm.providers.<name>]`")
    out.append("")
    out.append("| key | type | default | meaning |")
    out.append("|---|---|---|---|")
    for name, f in ProviderSettings.model_fields.items():
        out.append(f"| `{name}` | {type_name(f.annotation)} | {fmt_default(f)} | {f.description or ''} |")
    out.append("")
    out.append("Provider keys and base URLs from the environment: " + ", ".join(
        f"`{n}` -> `{k}`" for n, k in ENV_VARS.items() if k.startswith("llm.providers.")
    ) + ".")
    return "\n".join(out) + "\n"
