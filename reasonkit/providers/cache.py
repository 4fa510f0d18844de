"""The LLM response cache: memory (LRU + TTL) in front of an optional Redis shared by every replica.

- Key: SHA-256 of (provider, model, messages, system, schema, schema name, temperature, max_tokens).
  The provider name is the one that answers, so a fallback provider's replies get their own keys.
- What is cached: requests with temperature 0 only, unless `[llm.cache] cache_nondeterministic`.
  "Temperature" is the request's own `temperature` field for every provider, including Anthropic,
  whose SDK 2.x request carries none: the engine still asks for a temperature and that is what
  counts. No temperature (None) means the provider's default (1.0 for both APIs): nondeterministic.
- A hit is an `LLMResponse` with `cached=True`, `cache_layer` memory|redis, zero usage and cost, and
  `attempts=0`.
- Redis is optional (`REDIS_URL` with `ENABLE_CACHE` on). Any Redis error (down, refused, slower than
  `[database.redis] timeout_secs`) degrades to the memory layer: one warning per outage, a counter
  (`reasonkit_cache_errors_total{layer="redis"}`), `reasonkit_cache_backend_up{layer="redis"} 0`, and
  `cache_health()` reports it. Redis is tried again every `retry_secs` (and by every health check);
  the first success logs that it is back. A cache problem never fails a call.
- The Redis URL's password never appears in logs, errors or health output (only host:port/db).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio
from cachetools import TTLCache
from loguru import logger

from reasonkit.providers.base import LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from reasonkit.config import Settings
    from reasonkit.observability.metrics import Metrics

KEY_VERSION = 1
_SKIP = object()  # a Redis call that did not happen or failed


def cache_key(provider: str, model: str, request: LLMRequest) -> str:
    """The cache key of `request` sent to `provider` / `model` (hex SHA-256 of canonical JSON)."""
    payload = {
        "v": KEY_VERSION,
        "provider": provider,
        "model": model,
        "messages": request.messages,
        "system": request.system,
        "schema": request.schema,
        "schema_name": request.schema_name,
        "temperature": None if request.temperature is None else float(request.temperature),
        "max_tokens": request.max_tokens,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def redis_endpoint(url: str | None) -> str:
    """host:port/db of a Redis URL: what logs and health output show (never the credentials)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        return "redis"
    db = parts.path.lstrip("/") or "0"
    return f"{host}:{port}/{db}"


def _url_secrets(url: str | None) -> list[str]:
    if not url:
        return []
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    for value in (parts.password, parts.username):
        if value and len(value) >= 3:
            out += [value, unquote(value)]
    return out


def _encode(resp: LLMResponse) -> str:
    return json.dumps(
        {
            "text": resp.text,
            "parsed": resp.parsed,
            "stop_reason": resp.stop_reason,
            "provider": resp.provider,
            "model": resp.model,
            "structured": resp.structured,
            "output_mode": resp.output_mode,
            "stored_at": time.time(),
        },
        ensure_ascii=False,
    )


def _decode(blob: str | bytes, layer: str, started: float) -> LLMResponse | None:
    try:
        d = json.loads(blob)
        return LLMResponse(
            text=d["text"],
            parsed=d.get("parsed"),
            stop_reason=d.get("stop_reason", "end"),
            usage=Usage(),
            provider=d["provider"],
            model=d["model"],
            cost_usd=0.0,
            price_known=True,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=0,
            structured=d.get("structured", "native"),
            output_mode=d.get("output_mode"),
            cached=True,
            cache_layer=layer,
        )
    except (ValueError, KeyError, TypeError):
        return None  # not ours or corrupted: a miss


_LIVE: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


class ResponseCache:
    """Memory (cachetools TTLCache: LRU eviction + per-entry TTL) in front of an optional Redis."""

    def __init__(
        self,
        *,
        ttl_secs: float = 3600.0,
        max_entries: int = 1000,
        nondeterministic: bool = False,
        redis_url: str | None = None,
        redis_timeout: float = 0.5,
        redis_retry_secs: float = 5.0,
        key_prefix: str = "reasonkit:cache:",
        redis_max_connections: int | None = None,
        metrics: Metrics | None = None,
        quiet: bool = False,
        register: bool = True,
    ):
        from reasonkit.observability.metrics import default_metrics

        self.ttl_secs = ttl_secs
        self.nondeterministic = nondeterministic
        self.memory: TTLCache[str, str] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_secs) if max_entries > 0 else None
        )
        self.metrics = metrics or default_metrics()
        self.redis_timeout = redis_timeout
        self.redis_retry_secs = redis_retry_secs
        self.key_prefix = key_prefix
        self.redis_max_connections = redis_max_connections
        self.endpoint = redis_endpoint(redis_url)
        self._redis_url = redis_url or None
        self._secrets = _url_secrets(redis_url)
        self._client: Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.redis_down_since: float | None = None  # monotonic time of the first error of an outage
        self.last_error: str | None = None
        self._retry_at = 0.0
        self.closed = False
        self.quiet = quiet  # no outage logs (the throwaway probe of cache_health)
        if register:
            _LIVE.add(self)

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics | None = None, **kw: Any
    ) -> ResponseCache | None:
        """The cache `settings` ask for, or None when `features.cache` (ENABLE_CACHE) is off."""
        if not settings.features.cache:
            return None
        c, r = settings.llm.cache, settings.database.redis
        return cls(
            ttl_secs=c.ttl_secs,
            max_entries=c.max_entries,
            nondeterministic=c.cache_nondeterministic,
            redis_url=r.url.get_secret_value() if r.url else None,
            redis_timeout=r.timeout_secs,
            redis_retry_secs=r.retry_secs,
            key_prefix=r.key_prefix,
            redis_max_connections=r.max_connections,
            metrics=metrics,
            **kw,
        )

    @property
    def uses_redis(self) -> bool:
        return self._redis_url is not None

    def cacheable(self, request: LLMRequest) -> bool:
        """Temperature 0 requests always; others only with `cache_nondeterministic`."""
        if self.nondeterministic:
            return True
        return request.temperature is not None and request.temperature == 0

    # ------------------------------------------------------------------ lookups
    async def get(self, key: str) -> LLMResponse | None:
        started = time.perf_counter()
        if self.memory is not None:
            blob = self.memory.get(key)
            if blob is not None:
                hit = _decode(blob, "memory", started)
                if hit is not None:
                    self.metrics.cache_hits.labels(layer="memory").inc()
                    return hit
            self.metrics.cache_misses.labels(layer="memory").inc()
        if self._redis_url is not None:
            raw = await self._redis_call(lambda r: r.get(self.key_prefix + key))
            if raw is _SKIP:
                return None
            hit = _decode(raw, "redis", started) if isinstance(raw, bytes | str) else None
            if hit is None:
                self.metrics.cache_misses.labels(layer="redis").inc()
                return None
            self.metrics.cache_hits.labels(layer="redis").inc()
            if self.memory is not None:
                self.memory[key] = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            return hit
        return None

    async def put(self, key: str, resp: LLMResponse) -> None:
        blob = _encode(resp)
        if self.memory is not None:
            self.memory[key] = blob
        if self._redis_url is not None:
            px = max(1, int(self.ttl_secs * 1000))
            await self._redis_call(lambda r: r.set(self.key_prefix + key, blob, px=px))

    # ------------------------------------------------------------------ Redis plumbing
    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            assert self._redis_url is not None
            # No client-side retries: our own outage handling decides when to try again.
            kw: dict[str, Any] = {
                "socket_timeout": self.redis_timeout,
                "socket_connect_timeout": self.redis_timeout,
                "retry": Retry(NoBackoff(), 0),
            }
            if self.redis_max_connections:  # [database.redis] max_connections: wait for a free one
                from redis.asyncio import BlockingConnectionPool

                pool = BlockingConnectionPool.from_url(
                    self._redis_url,
                    max_connections=self.redis_max_connections,
                    timeout=self.redis_timeout,
                    **kw,
                )
                self._client = Redis(connection_pool=pool)
            else:
                self._client = Redis.from_url(self._redis_url, **kw)
            self._client_loop = loop
        return self._client

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _redis_call(self, fn: Callable[[Redis], Awaitable[Any]], force: bool = False) -> Any:
        if self._redis_url is None or self.closed:
            return _SKIP
        if not force and self.redis_down_since is not None and time.monotonic() < self._retry_at:
            return _SKIP  # in an outage: memory only until the next retry time
        try:
            # The socket timeouts bound each network operation; this bounds the whole command.
            with anyio.fail_after(self.redis_timeout * 2):
                result = await fn(self._redis())
        except Exception as exc:  # noqa: BLE001 - any Redis problem degrades to memory, never fails a call
            self._mark_down(exc)
            return _SKIP
        self._mark_up()
        return result

    def _mark_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        detail = str(exc) or "no answer in time"
        self.last_error = self._scrub(f"{type(exc).__name__}: {detail}")[:300]
        self._retry_at = now + self.redis_retry_secs
        self.metrics.cache_errors.labels(layer="redis").inc()
        self.metrics.cache_backend_up.labels(layer="redis").set(0)
        if self.redis_down_since is None:
            self.redis_down_since = now
            if self.quiet:
                return
            logger.warning(
                "response cache: Redis at {} is unreachable ({}); serving from the in-memory cache only "
                "and trying Redis again every {:g}s",
                self.endpoint,
                self.last_error,
                self.redis_retry_secs,
            )

    def _mark_up(self) -> None:
        if self.redis_down_since is not None and not self.quiet:
            logger.info(
                "response cache: Redis at {} is reachable again after {:.1f}s; shared caching resumed",
                self.endpoint,
                time.monotonic() - self.redis_down_since,
            )
            self.redis_down_since = None
            self.last_error = None
        self.metrics.cache_backend_up.labels(layer="redis").set(1)

    # ------------------------------------------------------------------ health and lifecycle
    async def health(self) -> dict[str, Any]:
        """{status, backend, latency_ms, error[, endpoint, down_secs]}. Pings Redis (also when it is
        in an outage, so a health check is one way it gets reconnected)."""
        if self._redis_url is None:
            return {"status": "healthy", "backend": "memory", "latency_ms": 0.0, "error": None}
        t0 = time.perf_counter()
        result = await self._redis_call(lambda r: r.ping(), force=True)
        ms = round((time.perf_counter() - t0) * 1000, 1)
        if result is _SKIP:
            down = 0.0 if self.redis_down_since is None else time.monotonic() - self.redis_down_since
            return {
                "status": "degraded",
                "backend": "memory",
                "latency_ms": ms,
                "error": self.last_error or "Redis is not reachable",
                "endpoint": self.endpoint,
                "down_secs": round(down, 1),
            }
        return {
            "status": "healthy",
            "backend": "redis+memory",
            "latency_ms": ms,
            "error": None,
            "endpoint": self.endpoint,
        }

    async def aclose(self) -> None:
        self.closed = True
        _LIVE.discard(self)
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection is best effort
                pass


async def cache_health(settings: Settings | None = None) -> dict[str, Any] | None:
    """The response cache's health entry for `/health`.

    Returns None when there is nothing to report (`settings` given with the cache off, or no
    settings and no cache in this process). Otherwise a dict with at least `status` ("healthy", or
    "degraded" while Redis is unreachable and the cache runs on memory only: calls still work),
    `latency_ms` (the Redis PING; 0 without Redis), `error` (None or a message without credentials)
    and `backend` ("memory" or "redis+memory"). It reports the caches of the providers live in this
    process; when there is none yet (the provider is built on first use) and `settings` configure
    Redis, it pings Redis with a short-lived connection.
    """
    if settings is not None and not settings.features.cache:
        return None
    live = [c for c in list(_LIVE) if not c.closed]
    with_redis = [c for c in live if c.uses_redis]
    if with_redis:
        reports = [await c.health() for c in with_redis]
        return next((r for r in reports if r["status"] != "healthy"), reports[0])
    if live:
        return await live[0].health()
    if settings is None:
        return None
    from reasonkit.observability.metrics import Metrics

    # A throwaway probe: its own registry (its PING is no cache event), no outage logs.
    probe = ResponseCache.from_settings(settings, Metrics(), quiet=True, register=False)
    if probe is None:
        return None
    try:
        return await probe.health()
    finally:
        await probe.aclose()
