"""The settings schema: one pydantic model per TOML table, every field with its description.

`Settings` is the root. The `[llm]` tables are in `reasonkit.config.llm` (re-exported here).
The descriptions are the documentation: `rk config init` and `rk config reference` (see
`reasonkit.config.reference`) print them, and docs/configuration.md is generated from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator

from reasonkit.config.base import CommaList, Section
from reasonkit.config.llm import (
    LLMSettings,
)
from reasonkit.config.oauth import OAuthSettings

__all__ = [
    "DatabaseSettings",
    "EngineSettings",
    "FeatureSettings",
    "LoggingSettings",
    "NOT_SETTINGS",
    "PrivacySettings",
    "ProtocolSettings",
    "RedisSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TracingSettings",
]


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface for `rk serve-mcp --port` (HTTP mode).")
    port: int = Field(9100, ge=1, le=65535, description="Port of the streamable HTTP MCP endpoint.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="HTTP mode: processes serving the one port (a supervisor process spawns them; "
        "`/metrics` adds up all of them). stdio ignores it.",
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Side HTTP port for /metrics and /health."
    )
    tool_deadline_secs: float | None = Field(
        None,
        gt=0,
        description="Default deadline of one MCP tool call; a partial result is returned when it passes. "
        "Unset: each tool's time estimate on the configured provider plus a tenth, between 50 and 600 s "
        "(docs/mcp-clients.md, 'Long calls').",
    )
    shutdown_grace_secs: float = Field(
        20.0, ge=0, description="How long in-flight calls may finish after SIGTERM."
    )
    stateless_http: bool = Field(
        True,
        description="Stateless streamable HTTP (any replica can answer any request).",
    )
    run_viewer: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Serve the run pages `/runs` and `/runs/{id}` on the HTTP and side ports (behind the "
        "bearer tokens when they are configured). `auto`: on when the server listens on a loopback "
        "address or tokens are configured; `on`: always; `off`: never.",
    )
    idempotency_ttl_secs: float = Field(
        86400.0,
        gt=0,
        description="How long a tool call's `idempotency_key` is remembered (`IDEMPOTENCY_TTL`): a repeat "
        "within it gets the first run's result.",
    )
    confirm_above_usd: float | None = Field(
        None,
        gt=0,
        description="Ask the client's user to confirm a ThinkTool call whose estimated cost is above this "
        "many US dollars, before it runs (MCP elicitation: `elicitation/create` on handshake-era "
        "connections, an input request on 2026-07-28 ones). Declined or cancelled calls do not run and are "
        "stored as `cancelled` runs that say so. Unset: never ask (docs/mcp-clients.md, 'Confirming "
        "expensive calls').",
    )
    confirm_unsupported: Literal["run", "refuse"] = Field(
        "run",
        description="A call over `confirm_above_usd` from a client that cannot be asked (it declared no "
        "elicitation, or a stateless handshake-era HTTP connection has no way back): `run` it as if the "
        "setting were unset, or `refuse` it with a tool error.",
    )
    # ---- admission control and connection limits (reasonkit/server/capacity/run_slots.py, serve.py)
    max_concurrent_runs: int | None = Field(
        None,
        ge=1,
        description="Tool runs (foreground and background) one process runs at once; more are refused at "
        "once (HTTP 503 with Retry-After, or a tool error 'busy, retry in N s'). Unset: 16 per CPU, "
        "between 16 and 256.",
    )
    max_inflight_provider_calls: int | None = Field(
        None,
        ge=1,
        description="LLM provider calls one process has in flight at once (the others wait their turn). "
        "Unset: 4 x max_concurrent_runs.",
    )
    max_background_runs_per_client: int = Field(
        4,
        ge=1,
        description="Background runs one client (bearer token, else IP address) may have going at once "
        "(across all replicas when `[database.redis] url` is set).",
    )
    max_runs_per_principal: int | None = Field(
        None,
        ge=1,
        description="Tool runs (foreground and background) one principal (a named or hashed bearer token, "
        "else `local`) may have going at once in one process, so no one fills `max_concurrent_runs`; more "
        "are refused with the tool error 'busy, retry in N s'. Unset: half of max_concurrent_runs (at "
        "least 1). Admin principals have no such cap.",
    )
    admin_principals: CommaList = Field(
        default_factory=list,
        description="Principals (token names, e.g. `ops` for a `ops:<token>` line) that see every run: "
        "`run_result`, the run resource and the run pages answer them for runs of any principal.",
    )
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    max_concurrent_runs_cluster: int | None = Field(
        None,
        ge=1,
        description="Tool runs all replicas sharing `[database.redis] url` run at once, counted in Redis; "
        "more are refused with the tool error 'busy, retry in N s'. Unset, without Redis or while Redis "
        "is down: no cluster-wide cap (each process has `max_concurrent_runs`).",
    )
    admission_queue: int = Field(
        0,
        ge=0,
        description="Calls that may wait for a free run slot when all are taken (0: refuse at once).",
    )
    admission_queue_timeout_secs: float = Field(
        2.0,
        gt=0,
        description="Longest wait in the admission queue (never more than a quarter of the call's deadline).",
    )
    max_connections: int = Field(
        1000, ge=1, description="Open HTTP connections (and requests) per process; beyond it: HTTP 503."
    )
    header_timeout_secs: float = Field(
        10.0, gt=0, description="Time a client has to send a request's headers, else it is disconnected."
    )
    body_timeout_secs: float = Field(
        30.0, gt=0, description="Time a client has to send a request's body; then HTTP 408."
    )
    keep_alive_secs: float = Field(5.0, gt=0, description="Idle keep-alive connections close after this.")
    max_sessions: int = Field(
        1000, ge=1, description="Stateful mode: open MCP sessions per process; more are refused."
    )
    session_idle_secs: float = Field(
        600.0, gt=0, description="Stateful mode: a session with no request for this long is closed."
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="IP addresses or CIDR ranges of reverse proxies whose X-Forwarded-For / "
        "X-Forwarded-Proto headers are believed. From any other peer these headers are ignored (the "
        "rate limit and the log use the peer's address). Comma-separated in the environment.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item[:60]!r} is not an IP address or CIDR range (10.0.0.0/8)") from None
        return value

    tools: CommaList = Field(
        default_factory=list,
        description="Expose only these MCP tools (protocol ids, `think`, `run_result`), e.g. "
        '`["think", "run_result"]`; empty: all. An unknown name stops the server with the list of '
        "valid ones.",
    )


class LoggingSettings(Section):
    # Unset by default: the right level depends on the command (a command's output is its result,
    # a server's log is its record), and a value written here applies to every command.
    level: str | None = Field(
        None,
        description="trace, debug, info, warning, error. Unset: warnings and errors for `rk` commands, "
        "info for `rk serve-mcp`.",
    )
    format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per line.")
    file: str | None = Field(None, description="Also write logs to this file.")
    include_timestamps: bool = Field(
        True,
        description="Start each line with its time (`timestamp` key in JSON); off when the log "
        "collector adds its own.",
    )


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
    max_connections: int | None = Field(
        None,
        ge=1,
        description="Most Redis connections the cache opens per process; a call waits (up to "
        "`timeout_secs`) for a free one. Unset: redis-py's default pool.",
    )


class DatabaseSettings(Section):
    redis: RedisSettings = Field(default_factory=RedisSettings)


class FeatureSettings(Section):
    metrics: bool = Field(True, description="Serve /metrics.")
    cache: bool = Field(
        True,
        description="Response cache: in memory, plus Redis when `REDIS_URL` is set (see `[llm.cache]`).",
    )
    sampling: bool = Field(False, description="Allow the MCP client's model (sampling) as a provider.")
    tracing: bool = Field(
        False,
        description="OpenTelemetry tracing (`ENABLE_TRACING`); the same switch as `[tracing] enabled`: "
        "either turns it on.",
    )


class TracingSettings(Section):
    enabled: bool = Field(
        False,
        description="Export OpenTelemetry spans over OTLP (also `[features] tracing`, ENABLE_TRACING).",
    )
    endpoint: str | None = Field(
        None,
        description="OTLP collector URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTLP_ENDPOINT`); unset: the "
        "OpenTelemetry SDK's default.",
    )
    capture_content: bool = Field(
        False, description="Put prompt and reply text into spans (off: only sizes, models and token counts)."
    )


class PrivacySettings(Section):
    redact_pii: bool = Field(
        False,
        description="Replace personal data (emails, phone numbers, cards, IBANs, IPs) in logs and "
        "stored runs.",
    )
    redact_provider_input: bool = Field(
        False,
        description="Replace it in what is sent to LLM providers too (system text and messages; on its own "
        "or with `redact_pii`).",
    )


class SecuritySettings(Section):
    auth_tokens_file: str | None = Field(
        None,
        description="File with the bearer tokens HTTP clients must send (`Authorization: Bearer "
        "<token>`), one per line; blank lines and lines starting with `#` are ignored. A line "
        "`name:token` names the token's principal (else it is `token-<first 12 hex of its sha256>`). "
        "Combined with `REASONKIT_AUTH_TOKENS` (comma-separated). Re-read on SIGHUP.",
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
        30.0,
        ge=0,
        description="Delete finished runs started more than this many days ago: at start-up, after "
        "runs and every `maintenance_secs` while serving. 0: keep them however old.",
    )
    max_runs: int | None = Field(
        10000,
        ge=0,
        description="Keep at most this many finished runs (the oldest are deleted, as for "
        "`retention_days`). 0: no limit.",
    )
    maintenance_secs: float = Field(
        300.0,
        gt=0,
        description="While the server runs: how often the run store applies the retention settings, "
        "checkpoints and truncates its write-ahead log, and retries final saves that failed.",
    )
    url: SecretStr | None = Field(
        None,
        description="PostgreSQL run store shared by replicas: `postgresql://user:password@host:5432/db` "
        "(`REASONKIT_DATABASE_URL`). Unset: the embedded SQLite file in `data_dir`.",
    )
    lease_secs: float = Field(
        30.0,
        ge=2,
        le=3600,
        description="PostgreSQL only: a replica renews the lease of its running runs every third of "
        "this; a run whose lease has expired (its replica died) is marked `interrupted` by the others. "
        "With Redis, the admission slots a replica holds expire the same way.",
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
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    # Where the settings came from (file path), for `rk config show`; not a setting.
    source_file: str | None = Field(None, exclude=True)
    # Warnings from reading deployment-guide keys and variables (reasonkit.config.compat); logged once
    # by setup_logging. Not a setting (a private attribute: no file or variable can set it).
    _compat_notes: list[str] = PrivateAttr(default_factory=list)

    @property
    def compat_notes(self) -> list[str]:
        return self._compat_notes

    def data_dir(self) -> Path:
        if self.storage.data_dir:
            return Path(self.storage.data_dir).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("reasonkit"))


# Fields of the models above that are bookkeeping, not settings: never documented or shown.
NOT_SETTINGS = frozenset({"source_file"})
