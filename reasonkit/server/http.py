"""HTTP apps: streamable HTTP MCP at `/mcp` plus `/metrics`, `/health`, `/health/live`,
`/health/ready`; and the side app (`--metrics-port`) with only the last four."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reasonkit import __version__
from reasonkit.observability.health import HealthChecker

if TYPE_CHECKING:
    from reasonkit.server.app import ReasonKitServer

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def health_routes(core: ReasonKitServer) -> list[Route]:
    checker = HealthChecker(core.settings, __version__)
    metrics_on = core.settings.features.metrics

    async def metrics(request: Request) -> Response:
        if not metrics_on:
            return PlainTextResponse("metrics are disabled (ENABLE_METRICS=false / [features] metrics = false)\n", status_code=404)
        body, content_type = core.metrics.render()
        return Response(body, headers={"content-type": content_type})

    async def health(request: Request) -> Response:
        body = await checker.check()
        body["ready"] = core.status.ready and not core.status.draining
        return JSONResponse(body, status_code=503 if body["status"] == "unhealthy" else 200, headers={"cache-control": "no-store"})

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive", "version": __version__}, headers={"cache-control": "no-store"})

    async def ready(request: Request) -> Response:
        st = core.status
        if st.draining:
            return JSONResponse({"status": "draining", "inflight": st.inflight}, status_code=503, headers={"cache-control": "no-store"})
        if not st.ready:
            return JSONResponse({"status": "starting"}, status_code=503, headers={"cache-control": "no-store"})
        return JSONResponse({"status": "ready", "inflight": st.inflight}, headers={"cache-control": "no-store"})

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
    ]


def transport_security(host: str, allowed_origins: list[str]) -> Any:
    """Host/Origin checks against DNS rebinding for loopback binds (as the SDK does by default),
    with `[security] allowed_origins` added to the allowed origins."""
    from mcp.server.transport_security import TransportSecuritySettings

    if host in LOOPBACK_HOSTS:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *allowed_origins],
        )
    # Non-loopback binds answer to the deployment's own names (service, ingress), which the server
    # cannot know: the SDK's Host check stays off there; authentication and Origin policy for
    # remote binds belong to the inbound-security layer in front of /mcp.
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def build_http_app(core: ReasonKitServer, host: str) -> Starlette:
    """Streamable HTTP MCP at /mcp (stateless per `[server] stateless_http`; both protocol eras: the
    SDK routes 2026-07-28 requests by their MCP-Protocol-Version header, handshake clients to the
    2025 path) plus the health and metrics routes."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

    s = core.settings
    manager = StreamableHTTPSessionManager(
        app=core.server,
        stateless=s.server.stateless_http,
        security_settings=transport_security(host, s.security.allowed_origins),
        max_request_body_size=int(s.security.max_request_size_mb * 1024 * 1024),
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
    return Starlette(routes=routes, lifespan=lifespan)


def build_side_app(core: ReasonKitServer) -> Starlette:
    return Starlette(routes=health_routes(core))
