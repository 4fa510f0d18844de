"""The deployment guide's settings, read as ours.

Operators arrive with the ReasonKit Core deployment guide (and the guides of neighbouring LLM
services): its `config/default.toml` and its `.env` must start the server as they are. This module
translates what those files say into our settings:

- keys and variables with an equivalent are mapped onto it (`server.timeout_secs` ->
  `server.tool_deadline_secs`, `features.enable_*` -> `features.*`, `[llm.rate_limiting]`
  `retry_attempts` / `retry_delay_ms` -> every provider's `max_retries` / `retry_base_delay_secs`,
  `CIRCUIT_BREAKER_*` -> every provider's breaker, cache TTLs -> `[llm.cache]`);
- the few with no equivalent (Qdrant, TLS, turning health checks off) are accepted with one warning
  each that says what they would do and why nothing reads them.

Our own spelling always wins over the guide's in the same layer. Anything not listed here is still an
unknown setting (with a "did you mean" from `reasonkit.config.loading`). The warnings are returned,
not logged: `load_settings` keeps them on `Settings.compat_notes` and `setup_logging` logs them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonkit.errors import ConfigError

# Guide key (dotted, in the TOML file) -> our key. Applied when ours is not set in the same file.
FILE_KEYS: dict[str, str] = {
    "server.timeout_secs": "server.tool_deadline_secs",
    "features.enable_metrics": "features.metrics",
    "features.enable_cache": "features.cache",
    "features.enable_tracing": "features.tracing",
    "llm.rate_limiting.fallback_provider": "llm.fallback_provider",
}
# Guide keys of `[llm.rate_limiting]` that are per-provider settings here: (our field, scale); both
# take a number >= 0 (`retry_attempts` a whole one).
PROVIDER_KEYS: dict[str, tuple[str, float]] = {
    "retry_attempts": ("max_retries", 1),
    "retry_delay_ms": ("retry_base_delay_secs", 0.001),
}
# Guide variables that set every provider's settings: (our field, type).
PROVIDER_ENV: dict[str, tuple[str, type]] = {
    "CIRCUIT_BREAKER_THRESHOLD": ("breaker_threshold", int),
    "CIRCUIT_BREAKER_TIMEOUT": ("breaker_cooldown_secs", float),
}
QDRANT_REASON = (
    "it configures the Qdrant vector memory of ReasonKit Core; this ReasonKit has no vector memory "
    "(runs are stored in SQLite or PostgreSQL), so nothing connects to Qdrant and the Qdrant service "
    "can be left out"
)
TLS_REASON = (
    "it would serve HTTPS with this certificate; ReasonKit serves plain HTTP and leaves TLS to the "
    "reverse proxy or ingress in front of it (docs/deployment.md)"
)
HEALTH_REASON = (
    "it would turn the health endpoints off; ReasonKit always serves /health, /health/live and "
    "/health/ready (token-free probes that show no secrets), so this is not used"
)
# Guide variables read here (beyond `ENV_VARS`); tests/deploy/test_env_vars.py counts them as ours.
GUIDE_ENV_VARS = (
    *PROVIDER_ENV,
    "L1_TTL_SECONDS",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "TLS_CERT_PATH",
    "TLS_KEY_PATH",
    "ENABLE_HEALTH_CHECKS",
    "ENABLE_L2_CACHE",
)
_TRUE = ("1", "true", "yes", "on")


@dataclass
class Translation:
    """What one layer (the file, or the environment) says in our terms."""

    tree: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Every provider's settings from this layer: {field: value}.
    providers: dict[str, Any] = field(default_factory=dict)


def _get(tree: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _pop(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            return  # the file has a value where a table belongs: validation reports it
        node = nxt
    node.setdefault(last, value)


def _copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def translate_file(tree: dict[str, Any], origin: str) -> Translation:
    """The config file's guide keys in our terms (the input is not changed)."""
    out = Translation(tree=_copy(tree))
    t = out.tree
    for guide, ours in FILE_KEYS.items():
        found, value = _get(t, guide)
        if found:
            _pop(t, guide)
            _put(t, ours, value)
    found, value = _get(t, "features.enable_health_checks")
    if found:
        _pop(t, "features.enable_health_checks")
        if value is False:
            out.notes.append(f"{origin}: [features] enable_health_checks = false is ignored: {HEALTH_REASON}")
    found, limits = _get(t, "llm.rate_limiting")
    if found and isinstance(limits, dict):
        for guide, (ours, scale) in PROVIDER_KEYS.items():
            if guide in limits:
                value = limits.pop(guide)
                whole = scale == 1
                ok = isinstance(value, int) if whole else isinstance(value, int | float)
                if not ok or isinstance(value, bool) or value < 0:
                    kind = "a whole number" if whole else "a number"
                    raise ConfigError(
                        f"invalid settings from {origin}:\n  llm.rate_limiting.{guide}: must be {kind} >= 0 "
                        f"(got {value!r})"
                    )
                out.providers[ours] = value if whole else value * scale
    found, qdrant = _get(t, "database.qdrant")
    if found:
        _pop(t, "database.qdrant")
        keys = ", ".join(sorted(qdrant)) if isinstance(qdrant, dict) else ""
        shown = f" ({keys})" if keys else ""
        out.notes.append(f"{origin}: [database.qdrant]{shown} is ignored: {QDRANT_REASON}")
    return out


def _number(name: str, raw: str, kind: type) -> Any:
    try:
        value = kind(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(
            f"invalid settings from the environment:\n  {name}: must be {what} >= 0 (got {raw!r})"
        )
    return value


def translate_env(environ: dict[str, str]) -> Translation:
    """The guide's variables that `ENV_VARS` cannot express one to one."""
    out = Translation()
    env = {k: v for k, v in environ.items() if v != ""}
    for name, (ours, kind) in PROVIDER_ENV.items():
        if name in env:
            out.providers[ours] = _number(name, env[name], kind)
    if "L1_TTL_SECONDS" in env:
        l1 = env["L1_TTL_SECONDS"]
        l2 = env.get("L2_TTL_SECONDS")
        if l2 is None:
            out.tree = {"llm": {"cache": {"ttl_secs": l1}}}
        elif l1.strip() != l2.strip():
            out.notes.append(
                f"L1_TTL_SECONDS={l1} is not used: ReasonKit's memory and Redis cache layers share one "
                f"TTL, [llm.cache] ttl_secs, here L2_TTL_SECONDS={l2}"
            )
    for name in ("QDRANT_URL", "QDRANT_API_KEY"):
        if name in env:  # the value is never repeated: it may be a secret
            out.notes.append(f"{name} is ignored: {QDRANT_REASON}")
    for name in ("TLS_CERT_PATH", "TLS_KEY_PATH"):
        if name in env:
            out.notes.append(f"{name} is ignored: {TLS_REASON}")
    if "ENABLE_HEALTH_CHECKS" in env and env["ENABLE_HEALTH_CHECKS"].strip().lower() not in _TRUE:
        out.notes.append(f"ENABLE_HEALTH_CHECKS={env['ENABLE_HEALTH_CHECKS']} is ignored: {HEALTH_REASON}")
    if "ENABLE_L2_CACHE" in env and env["ENABLE_L2_CACHE"].strip().lower() not in _TRUE:
        out.notes.append(
            f"ENABLE_L2_CACHE={env['ENABLE_L2_CACHE']} is ignored: the Redis layer of the cache is on "
            "exactly when REDIS_URL is set; leave REDIS_URL unset for a memory-only cache"
        )
    return out


def finish(tree: dict[str, Any], file_providers: dict[str, Any], env_providers: dict[str, Any]) -> None:
    """Apply the every-provider settings to each `[llm.providers.*]` table of the merged tree (the
    file's only where the table does not set the field; the environment's always, as environment
    beats file), and make `[features] tracing` and `[tracing] enabled` one switch."""
    providers = tree.get("llm", {}).get("providers") if isinstance(tree.get("llm"), dict) else None
    if isinstance(providers, dict):
        for table in providers.values():
            if not isinstance(table, dict):
                continue
            for key, value in file_providers.items():
                table.setdefault(key, value)
            table.update(env_providers)
    features, tracing = tree.get("features"), tree.get("tracing")
    on = (isinstance(features, dict) and features.get("tracing") is True) or (
        isinstance(tracing, dict) and tracing.get("enabled") is True
    )
    if on:
        if isinstance(features, dict) or features is None:
            tree.setdefault("features", {})["tracing"] = True
        if isinstance(tracing, dict) or tracing is None:
            tree.setdefault("tracing", {})["enabled"] = True
