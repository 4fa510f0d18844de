"""The settings schema: one pydantic model per TOML table, every field with its description.

`Settings` is the root. The `[llm]` tables are in `reasonkit.config.llm` (re-exported here).
The descriptions are the documentation: `rk config init` and `rk config reference` (see
`reasonkit.config.reference`) print them, and docs/configuration.md is generated from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from reasonkit.config.base import CommaList, Section
from reasonkit.config.llm import (
    CacheSettings,
    LLMSettings,
    LocalModelSettings,
    OutputMode,
    ProviderSettings,
    RateLimitSettings,
)

__all__ = [
    "CacheSettings",
    "DatabaseSettings",
    "EngineSettings",
    "FeatureSettings",
    "LLMSettings",
    "LocalModelSettings",
    "LoggingSettings",
    "NOT_SETTINGS",
    "OutputMode",
    "ProtocolSettings",
    "ProviderSettings",
    "RateLimitSettings",
    "RedisSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
]


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface for `rk serve-mcp --port` (HTTP mode).")
    port: int = Field(9100, ge=1, le=65535, description="Port of the streamable HTTP MCP endpoint.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Accepted for compatibility with the deployment guide and ignored (a warning is "
        "logged): one `rk serve-mcp` is one process; scale with replicas.",
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Side HTTP port for /metrics and /health."
    )
    tool_deadline_secs: float = Field(
        50.0,
        gt=0,
        description="Default deadline of one MCP tool call; a partial result is returned when it passes.",
    )
    shutdown_grace_secs: float = Field(
        20.0, ge=0, description="How long in-flight calls may finish after SIGTERM."
    )
    stateless_http: bool = Field(
        True,
        description="Stateless streamable HTTP (any replica can answer any request).",
    )


class LoggingSettings(Section):
    level: str = Field("info", description="trace, debug, info, warning, error.")
    format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per line.")
    file: str | None = Field(None, description="Also write logs to this file.")


class RedisSettings(Section):
    url: SecretStr | None = Field(
        None,
        description="redis://host:6379/0 (may carry a password). With `features.cache` on, the "
        "response cache is shared through it.",
    )
    timeout_secs: float = Field(
        0.5,
        gt=0,
        description="Connect and command timeout of the cache's Redis calls; a slower Redis counts as down.",
    )
    retry_secs: float = Field(
        5.0,
        gt=0,
        description="After a Redis error the cache uses memory only for this long, then tries Redis again.",
    )
    key_prefix: str = Field("reasonkit:cache:", description="Prefix of the cache's Redis keys.")


class DatabaseSettings(Section):
    redis: RedisSettings = Field(default_factory=RedisSettings)


class FeatureSettings(Section):
    metrics: bool = Field(True, description="Serve /metrics.")
    cache: bool = Field(
        True,
        description="Response cache: in memory, plus Redis when `REDIS_URL` is set (see `[llm.cache]`).",
    )
    sampling: bool = Field(False, description="Allow the MCP client's model (sampling) as a provider.")


class SecuritySettings(Section):
    auth_tokens_file: str | None = Field(
        None,
        description="File with the bearer tokens HTTP clients must send (`Authorization: Bearer "
        "<token>`), one per line; blank lines and lines starting with `#` are ignored. Combined with "
        "`REASONKIT_AUTH_TOKENS` (comma-separated). Re-read on SIGHUP.",
    )
    allowed_origins: CommaList = Field(
        default_factory=list,
        description="Browser origins (`https://app.example.com`, `http://host:*` for any port, `*` for "
        "any) allowed to call the HTTP server. Requests without an `Origin` header (non-browser "
        "clients) are always allowed; loopback binds also allow local origins. Comma-separated in the "
        "environment.",
    )
    allowed_hosts: CommaList = Field(
        default_factory=list,
        description="`Host` header values the HTTP server answers to (DNS-rebinding protection): "
        "`name`, `name:port`, `name:*` or `*.domain`. Loopback binds always allow localhost and "
        "loopback addresses (127.0.0.0/8, [::1]). On other binds an empty list accepts any Host (a "
        "warning is logged); when set, IP-address hosts are accepted too. Comma-separated in the "
        "environment.",
    )
    allow_unauthenticated_remote: bool = Field(
        False,
        description="Allow serving HTTP on a non-loopback address without bearer tokens (e.g. behind an "
        "authenticating proxy). Off: `rk serve-mcp` refuses to start.",
    )
    public_metrics: bool = Field(
        False,
        description="Serve `/metrics` and `/health` on the main HTTP port without a bearer token when "
        "tokens are configured. The side port (`--metrics-port`) and the probes `/health/live`, "
        "`/health/ready` never ask for one.",
    )
    max_request_size_mb: float = Field(
        4.0,
        gt=0,
        description="Largest accepted HTTP request body in MiB; larger requests get 413.",
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        description="HTTP requests per minute per client on the main port (per bearer token, else per "
        "client IP); over it: 429 with `Retry-After`. Unset: no limit.",
    )


class StorageSettings(Section):
    data_dir: str | None = Field(
        None, description="Where runs are stored; default: a per-user data directory."
    )
    save_runs: bool = Field(
        True,
        description="Save every run (CLI and MCP) with its full trace in the run store.",
    )
    retention_days: float | None = Field(
        None, gt=0, description="Delete stored runs older than this at start-up."
    )
    max_runs: int | None = Field(
        None,
        ge=1,
        description="Keep at most this many stored runs (oldest deleted at start-up).",
    )


class ProtocolSettings(Section):
    dirs: list[str] = Field(
        default_factory=lambda: ["~/.config/reasonkit/protocols"],
        description="User protocol directories.",
    )


class EngineSettings(Section):
    default_profile: str = Field("balanced", description="Profile used by `rk think` without --profile.")
    max_concurrency: int = Field(
        16,
        ge=1,
        le=256,
        description="LLM calls (steps, for_each items, samples) in flight at once per run; 16 lets "
        "GigaThink explore its 10-12 perspectives in one wave.",
    )
    budget_secs: float | None = Field(None, gt=0, description="Default time budget of a run.")
    budget_tokens: int | None = Field(None, ge=1, description="Default token budget of a run.")
    budget_usd: float | None = Field(None, gt=0, description="Default cost budget of a run.")


class Settings(Section):
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
    # Where the settings came from (file path), for `rk config show`; not a setting.
    source_file: str | None = Field(None, exclude=True)

    def data_dir(self) -> Path:
        if self.storage.data_dir:
            return Path(self.storage.data_dir).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("reasonkit"))


# Fields of the models above that are bookkeeping, not settings: never documented or shown.
NOT_SETTINGS = frozenset({"source_file"})
