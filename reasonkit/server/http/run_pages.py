"""The run pages: `/runs` (recent runs, filtered by `?tool=` and `?status=`, `?limit=`) and
`/runs/{run_id}` (the HTML report of one run, reasonkit/viewer), on the main HTTP port and on the
side port.

Access: behind the same bearer tokens (static, or OAuth access tokens) as `/mcp` when they are
configured. The main port's gate already asks for them; the side port's asks for none, so these
handlers check the token there themselves (the same answers: oauth.authenticate). Each page shows
only the runs of the token's principal (reasonkit/principal.py; an admin sees all): another
principal's run is "no such run", word for word as for an id that does not exist. `[server]
run_viewer` turns the pages on or off: `auto` (the default) serves them only when the server listens
on a loopback address or tokens are configured, so a non-loopback bind without authentication never
shows runs to the network. The pages are static HTML: no scripts, a Content-Security-Policy that
forbids every external load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reasonkit.errors import InputError, ReasonKitError
from reasonkit.principal import Principal
from reasonkit.server.http.oauth import authenticate
from reasonkit.server.http.security import SecurityPolicy, is_loopback

if TYPE_CHECKING:
    from reasonkit.server.mcp.core import ServerCore

MAX_LIMIT = 1000
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})


def _headers() -> dict[str, str]:
    from reasonkit.viewer.page import CSP

    return {
        "cache-control": "no-store",
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
    }


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_headers())


def _message(title: str, text: str, status: int) -> HTMLResponse:
    from html import escape

    from reasonkit.viewer.page import document

    body = f'<h1>{escape(title)}</h1><p>{escape(text)}</p><p><a href="/runs">recent runs</a></p>'
    return _page(document(title, body), status)


class RunPages:
    """The handlers, with what they need from the server (read on every request: a SIGHUP reload
    can change the settings and the tokens)."""

    def __init__(self, core: ServerCore, *, side: bool):
        self.core = core
        self.side = side
        self._policies: dict[int, SecurityPolicy] = {}

    def policy(self) -> SecurityPolicy:
        """The tokens in effect: the main port's policy in HTTP mode, else (stdio with a side port)
        one built from the settings, once per settings object."""
        if self.core.security is not None:
            policy: SecurityPolicy = self.core.security
            return policy
        key = id(self.core.settings)
        if key not in self._policies:
            self._policies.clear()
            settings = self.core.settings
            self._policies[key] = SecurityPolicy.from_settings(settings, settings.server.host)
        return self._policies[key]

    def host(self) -> str:
        return self.core.settings.server.host if self.side else self.core.bind_host

    def enabled(self) -> bool:
        mode = self.core.settings.server.run_viewer
        if mode != "auto":
            return mode == "on"
        return is_loopback(self.host()) or self.policy().auth

    async def guard(self, request: Request) -> Response | Principal:
        """Who asks (the principal of the token, `local` without tokens), or an answer that refuses
        the request (viewer off, token missing on the side port)."""
        try:
            policy = self.policy()
        except ReasonKitError as exc:
            logger.error("run pages: {}", exc)
            return _message("Run pages unavailable", "the bearer tokens cannot be loaded", 500)
        if not self.enabled():
            return _message(
                "Run pages are off",
                'The run pages are off on this server: set [server] run_viewer = "on" (or configure '
                "bearer tokens, or listen on a loopback address) to serve them.",
                404,
            )
        viewer = await authenticate(policy, request.headers.get("authorization"))
        if not isinstance(viewer, Principal):  # the side port (the main port's gate refused it already)
            status, body, headers = viewer
            return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})
        return viewer

    async def index(self, request: Request) -> Response:
        viewer = await self.guard(request)
        if isinstance(viewer, Response):
            return viewer
        params = request.query_params
        tool = params.get("tool", "").strip() or None
        status = params.get("status", "").strip() or None
        try:
            limit = int(params.get("limit", "50"))
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            return _message("Bad request", f"limit must be a whole number from 1 to {MAX_LIMIT}", 400)
        store = self.core.service.store
        rows: list[dict[str, Any]] = []
        if store is not None:
            import anyio

            try:
                rows = await anyio.to_thread.run_sync(
                    lambda: store.list(limit=limit, status=status, kind_or_name=tool, viewer=viewer)
                )
            except InputError as exc:  # an unknown status
                return _message("Bad request", str(exc), 400)
            except ReasonKitError as exc:  # the store cannot be read
                return _message("Cannot list runs", str(exc), 503)
        registry = self.core.registry
        names = sorted({*registry.protocols, *registry.profiles})
        from reasonkit.viewer import render_index

        return _page(render_index(rows, tool=tool, status=status, limit=limit, names=names, link="runs/"))

    async def run(self, request: Request) -> Response:
        viewer = await self.guard(request)
        if isinstance(viewer, Response):
            return viewer
        run_id = request.path_params["run_id"]
        try:
            trace = await self.core.service.trace(run_id, viewer)
        except ReasonKitError as exc:
            return _message("Cannot read the run", str(exc), 503)
        if trace is None:
            return _message("No such run", f"There is no run with id {run_id!r} on this server.", 404)
        from reasonkit.viewer import render_page

        return _page(render_page(trace, registry=self.core.registry, back="../runs"))


def run_page_routes(core: ServerCore, *, side: bool = False) -> list[Route]:
    """`/runs` and `/runs/{run_id}` for the main app (`side=False`) or the side app."""
    pages = RunPages(core, side=side)
    return [
        Route("/runs", pages.index, methods=["GET"]),
        Route("/runs/{run_id}", pages.run, methods=["GET"]),
    ]


def run_page_url(core: ServerCore, run_id: str) -> str | None:
    """The address of a run's page for MCP tool results, when it is known: the HTTP port (or else
    the side port) listens on a named address (not a wildcard such as 0.0.0.0) and the viewer is on
    there. None otherwise."""
    settings = core.settings
    if core.security is not None:
        host, port, side = core.bind_host, settings.server.port, False
    elif settings.server.metrics_port and settings.features.metrics:
        host, port, side = settings.server.host, settings.server.metrics_port, True
    else:
        return None
    if host.strip() in WILDCARD_HOSTS:
        return None
    try:
        if not RunPages(core, side=side).enabled():
            return None
    except ReasonKitError:
        return None
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    from urllib.parse import quote

    return f"http://{name}:{port}/runs/{quote(run_id, safe='')}"
