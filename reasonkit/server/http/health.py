"""Health checks for `/health`: cheap, token-free, cached for a few seconds.

- llm_provider: the provider that would be used is configured, and its endpoint (`[llm.providers.*]
  api_base`, else the kind's default from reasonkit/provider_kinds.py) accepts a TCP connection (no
  HTTP request, no tokens). With only client sampling enabled the check is "degraded". An in-process
  kind (the embedded local model) has no endpoint: it is healthy when it can run (llama-cpp-python
  and the model file are there). The output modes negotiated so far (per provider, base URL and model) and
  the local-model notice are shown with the check.
- redis: only when REDIS_URL is configured; a TCP connect plus a PING.
- llm_provider.circuits: each provider of the chain (default, then `fallback_provider`) with its
  circuit breaker's state (`closed`, `open` with `retry_in_secs`, `half_open`; `off` without a
  breaker) and consecutive failures; `closed` for all before the first call builds the chain.
- run_store: when runs are saved; no I/O, the store's own record: "degraded" while its writes fail
  (disk full, locked, read-only) or a final save waits for a retry, with the count of failed writes.

Overall: "unhealthy" (HTTP 503) when the LLM provider check fails; "degraded" (200) when only Redis
(which backs the shared cache and falls back to memory) or the run store (calls are still answered)
fails, or only client sampling is available.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio

from reasonkit import provider_kinds
from reasonkit.config import Settings
from reasonkit.config.show import mask_urls

CHECK_TIMEOUT = 2.0
CACHE_SECS = 5.0


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "localhost"
    port = parts.port or (
        443 if parts.scheme in ("https", "rediss") else 6379 if parts.scheme.startswith("redis") else 80
    )
    return host, port


async def _tcp_check(host: str, port: int, ping: bytes | None = None) -> tuple[bool, float, str]:
    t0 = time.monotonic()
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            stream = await anyio.connect_tcp(host, port)
            async with stream:
                if ping is not None:
                    await stream.send(ping)
                    reply = await stream.receive(64)
                    if not reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR")):
                        return False, (time.monotonic() - t0) * 1000, f"unexpected reply {reply[:20]!r}"
        return True, (time.monotonic() - t0) * 1000, ""
    except TimeoutError:
        return (
            False,
            (time.monotonic() - t0) * 1000,
            f"no answer from {host}:{port} within {CHECK_TIMEOUT:g}s",
        )
    except Exception as exc:  # noqa: BLE001 - any failure is just "unhealthy"
        return False, (time.monotonic() - t0) * 1000, f"{host}:{port}: {type(exc).__name__}: {exc}"[:300]


def circuit_states(provider: Any) -> dict[str, dict[str, Any]]:
    """Each provider's circuit breaker in the chain behind `provider` (the runtime's provider, None
    before the first call): what `/health` shows under `llm_provider.circuits`."""
    return {} if provider is None else provider.circuits()


def _in_process(kind: provider_kinds.ProviderKind) -> dict[str, Any]:
    """A kind without an endpoint (the embedded model): healthy when it can run here."""
    from reasonkit.providers import kind_available

    if kind_available(kind):
        return {"status": "healthy", "latency_ms": 0.0, "provider": kind.name, "detail": kind.description}
    detail = f"the {kind.name} provider needs {kind.needs}: pip install 'reasonkit[{kind.extra}]'"
    return {"status": "unhealthy", "latency_ms": 0.0, "provider": kind.name, "detail": detail}


@dataclass
class HealthChecker:
    settings: Settings
    version: str
    # What the running server knows about its provider (negotiated output modes, the local-model
    # notice); merged into the llm_provider check.
    provider_info: Callable[[], dict[str, Any]] | None = None
    # The run store in use (None: runs are not saved); its `health_check()` is shown as `run_store`.
    store: Callable[[], Any] | None = None
    cache_secs: float = CACHE_SECS
    _cached: dict[str, Any] | None = None
    _cached_at: float = 0.0
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def llm_provider(self) -> dict[str, Any]:
        check = await self._llm_provider()
        if self.provider_info is not None:
            check.update(self.provider_info())
        if not check.get("circuits") and check.get("provider"):
            check["circuits"] = self._unused_circuits(check["provider"])
        return check

    def _unused_circuits(self, primary: str) -> dict[str, dict[str, Any]]:
        """The chain's breakers before any call (nothing built yet): all closed, or off."""
        out: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys([primary, *self.settings.llm.fallback_provider]):
            ps = self.settings.llm.providers.get(name)
            threshold = ps.breaker_threshold if ps is not None else 3
            out[name] = {"state": "closed", "failures": 0} if threshold > 0 else {"state": "off"}
        return out

    async def _llm_provider(self) -> dict[str, Any]:
        from reasonkit.errors import NoProviderConfigured
        from reasonkit.providers import choose_provider_name

        sampling = self.settings.features.sampling or self.settings.llm.default_provider == "sampling"
        settings = self.settings
        if settings.llm.default_provider == "sampling":
            settings = settings.model_copy(deep=True)
            settings.llm.default_provider = None
        try:
            name = choose_provider_name(settings)
        except NoProviderConfigured:
            if sampling:
                return {
                    "status": "degraded",
                    "latency_ms": 0.0,
                    "provider": "sampling",
                    "detail": "only MCP client sampling is available (no API provider configured)",
                }
            return {
                "status": "unhealthy",
                "latency_ms": 0.0,
                "provider": None,
                "detail": f"no LLM provider configured (set {provider_kinds.setup_vars()})",
            }
        kind = provider_kinds.KINDS.get(name)
        if kind is not None and kind.in_process:
            return _in_process(kind)
        ps = settings.llm.providers.get(name)
        configured = ps is not None and bool((ps.api_key and ps.api_key.get_secret_value()) or ps.api_base)
        if not configured:
            return {
                "status": "unhealthy",
                "latency_ms": 0.0,
                "provider": name,
                "detail": f"provider '{name}' has no API key or base URL",
            }
        url = (ps.api_base if ps else None) or (kind.endpoint if kind is not None else None)
        if not url:
            return {
                "status": "unhealthy",
                "latency_ms": 0.0,
                "provider": name,
                "detail": f"provider '{name}' has no base URL",
            }
        host, port = _host_port(url)
        ok, ms, detail = await _tcp_check(host, port)
        out: dict[str, Any] = {
            "status": "healthy" if ok else "unhealthy",
            "latency_ms": round(ms, 1),
            "provider": name,
            "endpoint": f"{host}:{port}",
        }
        if detail:
            out["detail"] = detail
        return out

    async def redis(self) -> dict[str, Any] | None:
        url = self.settings.database.redis.url
        if url is None or not url.get_secret_value():
            return None
        host, port = _host_port(url.get_secret_value())
        ok, ms, detail = await _tcp_check(host, port, ping=b"PING\r\n")
        out: dict[str, Any] = {
            "status": "healthy" if ok else "unhealthy",
            "latency_ms": round(ms, 1),
            "endpoint": f"{host}:{port}",
        }
        if detail:
            out["detail"] = detail
        return out

    async def check(self) -> dict[str, Any]:
        """The /health body (cached for `cache_secs`)."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached_at < self.cache_secs:
                body = dict(self._cached)
            else:
                checks: dict[str, Any] = {"llm_provider": await self.llm_provider()}
                redis = await self.redis()
                if redis is not None:
                    checks["redis"] = redis
                store = self.store() if self.store is not None else None
                run_store = store.health_check() if store is not None else None
                if run_store is not None:
                    checks["run_store"] = run_store
                # Without an LLM nothing works: unhealthy (503). Redis only backs the shared cache, and
                # its outage falls back to the in-memory cache; calls are answered while the run store
                # fails: degraded (still 200).
                others = [c["status"] for k, c in checks.items() if k != "llm_provider"]
                llm = checks["llm_provider"]["status"]
                if llm == "unhealthy":
                    status = "unhealthy"
                elif llm == "degraded" or any(s != "healthy" for s in others):
                    status = "degraded"
                else:
                    status = "healthy"
                # No password typed into a provider or database URL reaches the (tokenless) side port.
                body = {"status": status, "version": self.version, "checks": mask_urls(checks)}
                self._cached, self._cached_at = dict(body), now
        from datetime import UTC, datetime

        body["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return body
