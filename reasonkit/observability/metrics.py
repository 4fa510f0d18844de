"""Prometheus metrics in one dedicated registry (never the global default one).

Names follow the deployment guide (`reasonkit_requests_total{method,profile,status}`,
`reasonkit_request_duration_seconds`, `reasonkit_llm_tokens_total{provider,type}`,
`reasonkit_confidence_score{profile}`) plus step, provider-call, cost, cache and breaker metrics.

Label values stay low-cardinality: tool, protocol, profile and step ids come from the loaded protocol
files; provider names from the config. Run ids, user text and errors' messages never become labels.
The request labels are fed from what clients send (a JSON-RPC method, a tool or profile name), so
`observe_request` and `observe_run` keep only known values (the MCP methods, `REQUEST_STATUSES`, and
the names the run service and the server register with `know`) and count anything else as `other`:
one label per made-up method once made `/metrics` grow without bound.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = [
    "BREAKER_STATES",
    "CONFIDENCE_BUCKETS",
    "MCP_METHODS",
    "MULTIPROC_ENV",
    "Metrics",
    "OTHER",
    "PROVIDER_BUCKETS",
    "REQUEST_BUCKETS",
    "STEP_BUCKETS",
    "Stopwatch",
    "TOKEN_TYPES",
    "default_metrics",
]

TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Tool calls run for seconds to minutes; MCP housekeeping calls take milliseconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300, 600)
STEP_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# The label of a client-sent value that is not a known one.
OTHER = "other"
# The MCP request methods a client may send (notifications are not counted).
MCP_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "server/discover",
        "tasks/get",
        "tasks/list",
        "tasks/cancel",
        "tasks/result",
    }
)
# `status` of reasonkit_requests_total: a run's status, or the request's outcome.
REQUEST_STATUSES = frozenset(
    {"complete", "incomplete", "failed", "cancelled", "interrupted", "error", "running", "ok"}
)
# Set by the `[server] workers` supervisor for its worker processes (prometheus-client's multiprocess
# mode: each process writes its values to files there; /metrics adds them up).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """All ReasonKit metrics, registered in `self.registry` (a fresh CollectorRegistry)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.names: frozenset[str] = frozenset()  # tool, protocol and profile names: `know`
        r = self.registry
        self.requests = Counter(
            "reasonkit_requests_total",
            "MCP requests handled. method: the tool name for tools/call, else the MCP method; profile: the "
            "profile or protocol a tool ran (empty otherwise); status: complete, incomplete, failed, "
            "cancelled, error, running (background start) or ok.",
            ["method", "profile", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "reasonkit_request_duration_seconds",
            "Wall time of MCP requests (tool calls: until the result is returned).",
            ["method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "reasonkit_llm_tokens_total",
            "LLM tokens used, by provider and type (input excludes cache reads and writes).",
            ["provider", "type"],
            registry=r,
        )
        self.confidence = Histogram(
            "reasonkit_confidence_score",
            "Final confidence of finished runs, by profile (or protocol for single-tool runs).",
            ["profile"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.step_duration = Histogram(
            "reasonkit_step_duration_seconds",
            "Duration of protocol steps (all items of a for_each step together).",
            ["protocol", "step"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.provider_call_duration = Histogram(
            "reasonkit_provider_call_duration_seconds",
            "Latency of one provider call, retries included.",
            ["provider"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "reasonkit_provider_errors_total",
            "Provider calls that failed, by error type (auth, rate_limit, server, timeout, connection, ...).",
            ["provider", "type"],
            registry=r,
        )
        self.inflight = Gauge(
            "reasonkit_inflight_requests",
            "Tool runs in progress (foreground calls and background runs).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cost = Counter(
            "reasonkit_cost_usd_total",
            "Estimated LLM cost in USD from the price table.",
            ["provider"],
            registry=r,
        )
        # Used by the provider layer's cache and circuit breaker.
        self.cache_hits = Counter(
            "reasonkit_cache_hits_total", "LLM response cache hits.", ["layer"], registry=r
        )
        self.cache_misses = Counter(
            "reasonkit_cache_misses_total", "LLM response cache misses.", ["layer"], registry=r
        )
        self.breaker_state = Gauge(
            "reasonkit_circuit_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            ["provider"],
            registry=r,
            multiprocess_mode="livemax",
        )

        # ---- Added by the providers layer (reasonkit/providers/ wrappers and cache.py) ---------------
        # Retries, fallbacks and client-side rate limiting happen inside one provider call, so the
        # call-level metrics above (provider_errors, provider_call_duration) cannot show them.
        self.provider_retries = Counter(
            "reasonkit_provider_retries_total",
            "Provider attempts that failed and were retried by our retry loop, by provider and error type.",
            ["provider", "type"],
            registry=r,
        )
        self.provider_fallbacks = Counter(
            "reasonkit_provider_fallbacks_total",
            "Calls that left a provider for the next one in the fallback chain, by reason: circuit_open, "
            "rate_limited, or the error type that exhausted the provider's retries.",
            ["provider", "reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "reasonkit_rate_limited_total",
            "Calls that met the client-side rate limit, by outcome: queued (waited for a slot), dropped, "
            "queue_full, fallback.",
            ["provider", "outcome"],
            registry=r,
        )
        self.cache_errors = Counter(
            "reasonkit_cache_errors_total",
            "Errors of a response-cache layer (Redis unreachable or too slow); the call goes on without it.",
            ["layer"],
            registry=r,
        )
        self.cache_backend_up = Gauge(
            "reasonkit_cache_backend_up",
            "1 while the shared cache backend (Redis) is reachable, 0 while the cache runs on memory only.",
            ["layer"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.http_rejected = Counter(
            "reasonkit_http_rejected_total",
            "HTTP requests refused before reaching the MCP server, by reason: unauthorized (no token), "
            "invalid_token, invalid_host, invalid_origin, too_large, rate_limited.",
            ["reason"],
            registry=r,
        )
        self.reloads = Counter(
            "reasonkit_config_reloads_total",
            "SIGHUP reloads of settings and protocols, by outcome: ok, partial (some protocol files were "
            "skipped), failed (the previous settings and protocols stay in effect).",
            ["outcome"],
            registry=r,
        )
        self.store_write_errors = Counter(
            "reasonkit_store_write_errors_total",
            "Run-store writes that failed (disk full, locked past the retries, read-only file, ...), by "
            "operation: start, save, prune, checkpoint, mark_interrupted. /health is degraded while "
            "they keep failing.",
            ["operation"],
            registry=r,
        )

        # ---- Run slots and worker processes (server/capacity/run_slots.py, server/lifecycle/workers.py) ----
        self.admission = Counter(
            "reasonkit_admission_total",
            "Tool runs at the admission gate, by outcome: admitted (at once), queued (waited for a slot), "
            "rejected; reason (empty when admitted): capacity, cluster_capacity, queue_timeout, "
            "background_per_client, "
            "draining.",
            ["outcome", "reason"],
            registry=r,
        )
        self.provider_calls_waiting = Gauge(
            "reasonkit_provider_calls_waiting",
            "Provider calls waiting for a slot under [server] max_inflight_provider_calls.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers = Gauge(
            "reasonkit_server_workers",
            "Server processes alive behind this port (each adds 1).",
            registry=r,
            multiprocess_mode="livesum",
        )

    # ------------------------------------------------------------------ recording helpers
    @contextmanager
    def track_inflight(self) -> Iterator[None]:
        self.inflight.inc()
        try:
            yield
        finally:
            self.inflight.dec()

    def know(self, names: Iterable[str]) -> None:
        """Names that may be labels (tools, protocols, profiles, the CLI's methods): added to those
        already known, so a series once exported keeps its name after a reload removed its tool."""
        self.names = self.names | frozenset(names)

    def _known(self, name: str) -> str:
        return name if name in self.names else OTHER

    def observe_request(self, method: str, profile: str, status: str, seconds: float) -> None:
        method = method if method in MCP_METHODS else self._known(method)
        profile = profile and self._known(profile)
        status = status if status in REQUEST_STATUSES else OTHER
        self.requests.labels(method=method, profile=profile, status=status).inc()
        self.request_duration.labels(method=method).observe(max(0.0, seconds))

    def observe_provider_call(
        self,
        provider: str,
        seconds: float,
        usage: dict[str, int] | None = None,
        cost_usd: float = 0.0,
        error_type: str | None = None,
    ) -> None:
        self.provider_call_duration.labels(provider=provider).observe(max(0.0, seconds))
        if error_type is not None:
            self.provider_errors.labels(provider=provider, type=error_type).inc()
        for t in TOKEN_TYPES:
            n = (usage or {}).get(t, 0)
            if n:
                self.tokens.labels(provider=provider, type=t).inc(n)
        if cost_usd > 0:
            self.cost.labels(provider=provider).inc(cost_usd)

    def observe_run(
        self, label: str, status: str, confidence: float, steps: Iterable[tuple[str, str, float]]
    ) -> None:
        """What a finished run adds: its confidence (complete and incomplete runs) and the durations
        of its finished steps, given as (protocol, step, seconds). Requests are counted by the caller
        and provider calls by the metered provider, so nothing is counted twice."""
        if status in ("complete", "incomplete"):
            self.confidence.labels(profile=self._known(label)).observe(min(1.0, max(0.0, confidence)))
        for protocol, step, seconds in steps:
            if seconds > 0:
                self.step_duration.labels(protocol=protocol, step=step).observe(seconds)

    def observe_store_error(self, operation: str) -> None:
        self.store_write_errors.labels(operation=operation).inc()

    def set_breaker_state(self, provider: str, state: str) -> None:
        self.breaker_state.labels(provider=provider).set(BREAKER_STATES.get(state, 0))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this registry and its content type; with several worker
        processes (`PROMETHEUS_MULTIPROC_DIR` set by the supervisor), the sum over all of them."""
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.t0


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide Metrics (one registry per process, shared by the main and side ports)."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
