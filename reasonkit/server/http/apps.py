"""HTTP apps: streamable HTTP MCP at `/mcp` plus `/metrics`, `/health`, `/health/live`,
`/health/ready` (also as `/live`, `/ready`); and the side app (`--metrics-port`) with only these.
Both sit behind the gate (gate.py); the side port never asks for a token and has no rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reasonkit import __version__
from reasonkit.server.capacity.rate_limits import RateLimiter
from reasonkit.server.capacity.shared_limits import shared_limiter
from reasonkit.server.http.front import AdmissionFront
from reasonkit.server.http.gate import Gate
from reasonkit.server.http.health import HealthChecker
from reasonkit.server.http.oauth import metadata_routes
from reasonkit.server.http.run_pages import run_page_routes
from reasonkit.server.http.security import SecurityPolicy, is_loopback

if TYPE_CHECKING:
    from reasonkit.server.mcp.app import ReasonKitServer

# The SDK's own body limit sits behind ours; ours answers first (with a JSON error, and with the
# limit a SIGHUP can change), so the SDK's only needs to be out of the way.
SDK_BODY_LIMIT = 1 << 40
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def health_routes(core: ReasonKitServer) -> list[Route]:
    checkers: dict[int, HealthChecker] = {}

    def checker() -> HealthChecker:
        # Settings can be swapped by a SIGHUP reload: one checker (with its short cache) per settings object.
        key = id(core.settings)
        if key not in checkers:
            checkers.clear()
            checkers[key] = HealthChecker(
                core.settings, __version__, provider_info=core.provider_info, store=lambda: core.store
            )
        return checkers[key]

    async def metrics(request: Request) -> Response:
        if not core.settings.features.metrics:
            return PlainTextResponse(
                "metrics are disabled (ENABLE_METRICS=false / [features] metrics = false)\n", status_code=404
            )
        body, content_type = core.metrics.render()
        return Response(body, headers={"content-type": content_type})

    async def health(request: Request) -> Response:
        body = await checker().check()
        body["ready"] = core.status.ready and not core.status.draining
        return JSONResponse(
            body,
            status_code=503 if body["status"] == "unhealthy" else 200,
            headers={"cache-control": "no-store"},
        )

    async def live(request: Request) -> Response:
        return JSONResponse(
            {"status": "alive", "version": __version__}, headers={"cache-control": "no-store"}
        )

    async def ready(request: Request) -> Response:
        st = core.status
        if st.draining:
            return JSONResponse(
                {"status": "draining", "inflight": st.inflight},
                status_code=503,
                headers={"cache-control": "no-store"},
            )
        if not st.ready:
            return JSONResponse(
                {"status": "starting"}, status_code=503, headers={"cache-control": "no-store"}
            )
        return JSONResponse(
            {"status": "ready", "inflight": st.inflight}, headers={"cache-control": "no-store"}
        )

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        # the short names of the neighbouring guides' probes (security.PROBE_PATHS: token-free too)
        Route("/live", live, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]


def main_policy(core: ReasonKitServer, host: str) -> SecurityPolicy:
    """The policy of the main port: the one `rk serve-mcp` built (and reloads), else from settings."""
    if core.security is None:
        core.bind_host = host
        core.security = SecurityPolicy.from_settings(core.settings, host)
    policy: SecurityPolicy = core.security
    return policy


def side_policy(core: ReasonKitServer) -> SecurityPolicy:
    """The side port: no tokens, no rate limit; Host/Origin checks as on the main port (on a
    non-loopback bind, Host is checked only when `[security] allowed_hosts` is set)."""
    s = core.settings.security
    return SecurityPolicy(
        loopback=is_loopback(core.settings.server.host),
        allowed_hosts=tuple(s.allowed_hosts),
        allowed_origins=tuple(s.allowed_origins),
        max_body=max(1, int(s.max_request_size_mb * 1024 * 1024)),
    )


def build_http_app(core: ReasonKitServer, host: str) -> Starlette:
    """Streamable HTTP MCP at /mcp (stateless per `[server] stateless_http`; both protocol eras: the
    SDK routes 2026-07-28 requests by their MCP-Protocol-Version header, handshake clients to the
    2025 path) plus the health and metrics routes, behind the gate (Host/Origin, tokens, rate limit,
    body size and deadline, run slots: see gate.py)."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    s = core.settings
    main_policy(core, host)
    manager = StreamableHTTPSessionManager(
        app=core.server,
        stateless=s.server.stateless_http,
        # Host/Origin and the body limit are enforced by the gate for every path (with
        # settings a SIGHUP can change); the SDK's copies of these checks stay out of the way.
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=SDK_BODY_LIMIT,
        # stateful mode: `[server] max_sessions` open at once, closed after `session_idle_secs` idle
        max_sessions=s.server.max_sessions,
        session_idle_timeout=s.server.session_idle_secs,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            core.status.ready = True
            try:
                yield
            finally:
                core.status.ready = False

    routes = [Route("/mcp", endpoint=StreamableHTTPASGIApp(manager)), *health_routes(core)]
    routes += run_page_routes(core)  # /runs, /runs/{id} (reasonkit/server/http/run_pages.py)
    routes += metadata_routes(lambda: core.security)  # OAuth resource metadata (oauth.py)
    guard = Middleware(
        Gate,
        policy=lambda: core.security,
        metrics=core.metrics,
        run_slots=core.admission,
        body_timeout=lambda: core.settings.server.body_timeout_secs,
        limiter=shared_limiter(s, RateLimiter()),  # Redis-shared when [database.redis] url is set
    )
    # outermost: over capacity, a ThinkTool call is refused before the gate reads its body (front.py)
    front = Middleware(AdmissionFront, run_slots=core.admission, metrics=core.metrics)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[front, guard])


def build_side_app(core: ReasonKitServer) -> Starlette:
    guard = Middleware(Gate, policy=lambda: side_policy(core), metrics=core.metrics, side=True)
    return Starlette(routes=[*health_routes(core), *run_page_routes(core, side=True)], middleware=[guard])
