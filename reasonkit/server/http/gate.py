"""The HTTP gate: the rules every request to the main port and the side port passes, in this order;
the first that refuses answers (a JSON-RPC error body, counted and logged: rule.py).

0. `/health/live`, `/health/ready`, `/live` and `/ready` pass untouched (probes address the pod by
   IP and send no token), as does anything that is not an HTTP request (the lifespan).
1. `HostCheck`: one well-formed Host header (400) naming this server (421), against DNS rebinding;
2. `OriginCheck`: a browser's Origin must be allowed (403);
3. `OAuthCheck`: with `[server.oauth]`, an OAuth access token (401 / 403 with the MCP authorization
   spec's `WWW-Authenticate`, 503 while the issuer's keys cannot be fetched); static tokens pass on;
4. `TokenCheck`: the bearer token (401 with `WWW-Authenticate`) when tokens are configured; it
   records who the client is (token id, else IP) for the rules after it;
5. `ClientRateLimit`: `[security] rate_limit_per_minute` per client (429 with `Retry-After`);
6. `BodySizeLimit`: `[security] max_request_size_mb`, declared and received (413);
7. `BodyDeadline`: the whole body within `[server] body_timeout_secs` (408);
8. `JsonDepthLimit`: a body nested deeper than `jsonguard.MAX_DEPTH` is a parse error (400);
9. `RunSlotReservation`: a ThinkTool call's run slot, or 503 with `Retry-After` when the server is
   full or draining, before the MCP SDK parses anything.

The checks 1, 2, 4 and 5 are in checks.py, 3 in oauth.py, 6-8 in body.py, 9 in reservation.py; the
policy they enforce (`SecurityPolicy`, swapped as a whole on SIGHUP) in security.py. Each rule is a
pure ASGI middleware around the next, in the style of Starlette's middleware: a new concern is one
class and one entry in `RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reasonkit.server.capacity.rate_limits import RateLimiter
from reasonkit.server.http.body import BodyDeadline, BodySizeLimit, JsonDepthLimit
from reasonkit.server.http.checks import ClientRateLimit, HostCheck, OriginCheck, TokenCheck
from reasonkit.server.http.oauth import OAuthCheck
from reasonkit.server.http.reservation import RunSlotReservation
from reasonkit.server.http.rule import GateConfig, Rule
from reasonkit.server.http.security import PROBE_PATHS, SecurityPolicy

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.capacity.run_slots import RunSlots

RULES: tuple[type[Rule], ...] = (
    HostCheck,
    OriginCheck,
    OAuthCheck,
    TokenCheck,
    ClientRateLimit,
    BodySizeLimit,
    BodyDeadline,
    JsonDepthLimit,
    RunSlotReservation,
)


class Gate:
    """The rules of `RULES` around an ASGI app. `policy` is read on every request (a callable, so a
    SIGHUP reload takes effect at once); `side` is the metrics/health port; `run_slots` the process's
    run-slot gate; `limiter` the per-client rate limiter (a local token bucket by default)."""

    def __init__(
        self,
        app: ASGIApp,
        policy: Callable[[], SecurityPolicy],
        metrics: Metrics | None = None,
        *,
        side: bool = False,
        run_slots: RunSlots | None = None,
        body_timeout: Callable[[], float] | None = None,
        limiter: Any = None,
    ):
        self.app = app
        config = GateConfig(
            policy=policy,
            metrics=metrics,
            side=side,
            run_slots=run_slots,
            body_timeout=body_timeout or (lambda: 30.0),
            limiter=limiter or RateLimiter(),  # shared through Redis: capacity/shared_limits.py
        )
        chain = app
        for rule in reversed(RULES):
            chain = rule(chain, config)
        self.rules = chain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
        else:
            await self.rules(scope, receive, send)
