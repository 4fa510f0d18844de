"""The ASGI middleware that enforces a `SecurityPolicy` (reasonkit/server/http/security.py) on every HTTP
request, in the order that module's docstring gives, plus the per-client token-bucket rate limiter
and the JSON-RPC rejection bodies. After those checks: the body must arrive within
`[server] body_timeout_secs` (else 408), and a ThinkTool call that the admission gate
(reasonkit/server/capacity/run_slots.py) would refuse, or any tool call while draining, is answered 503 with
`Retry-After` before the MCP SDK parses it."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from loguru import logger
from starlette.datastructures import Headers

from reasonkit.server.capacity import shared_limits
from reasonkit.server.capacity.run_slots import TICKET_KEY
from reasonkit.server.http.connections import host_header_ok
from reasonkit.server.http.security import (
    ERROR_CODES,
    MAX_RATE_KEYS,
    OBSERVABILITY_PATHS,
    PROBE_PATHS,
    REALM,
    SecurityPolicy,
    bearer_token,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.capacity.run_slots import Admission

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, body, headers

# Reasons of this module's own refusals (the security ones are in security.ERROR_CODES).
OWN_CODES = {"busy": -32000, "draining": -32000, "body_timeout": -32600}


# ----------------------------------------------------------------------------- rate limit
@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per client: `per_minute` requests of capacity, refilled continuously."""

    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def hit(self, key: str, per_minute: int) -> float:
        """Take one request for `key`; 0.0 when allowed, else seconds until the next one is."""
        now = self.clock()
        rate = per_minute / 60.0
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) >= MAX_RATE_KEYS:
                self._prune(now, rate, per_minute)
            b = self.buckets[key] = _Bucket(float(per_minute), now)
        b.tokens = min(float(per_minute), b.tokens + (now - b.at) * rate)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate

    def _prune(self, now: float, rate: float, cap: int) -> None:
        full = [k for k, b in self.buckets.items() if b.tokens + (now - b.at) * rate >= cap]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= MAX_RATE_KEYS:  # still full: forget the oldest half
            for k in sorted(self.buckets, key=lambda k: self.buckets[k].at)[: MAX_RATE_KEYS // 2]:
                del self.buckets[k]


# ----------------------------------------------------------------------------- middleware
def rejection(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": ERROR_CODES.get(reason, OWN_CODES.get(reason, -32000)),
                "message": message,
                "data": {"reason": reason, "status": status},
            },
        }
    ).encode()
    hdrs = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "cache-control": "no-store",
        **(headers or {}),
    }
    return status, body, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()]


def _short(value: str, n: int = 80) -> str:
    v = value.encode("ascii", "backslashreplace").decode()
    return v if len(v) <= n else v[:n] + "..."


class SecurityMiddleware:
    """The checks of the module docstring around an ASGI app. `policy` is read on every request
    (a callable, so a SIGHUP reload takes effect at once); `side` is the metrics/health port."""

    def __init__(
        self,
        app: ASGIApp,
        policy: Callable[[], SecurityPolicy],
        metrics: Metrics | None = None,
        *,
        side: bool = False,
        gate: Admission | None = None,
        body_timeout: Callable[[], float] | None = None,
        limiter: Any = None,
    ):
        self.app = app
        self.policy = policy
        self.metrics = metrics
        self.side = side
        self.gate = gate
        self.body_timeout = body_timeout or (lambda: 30.0)
        self.limiter = limiter or RateLimiter()  # shared through Redis: capacity/shared_limits.py

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        policy = self.policy()
        headers = Headers(scope=scope)
        path = scope.get("path", "")
        client = scope.get("client")
        ip = str(client[0]) if client else "unknown"

        host = headers.get("host")
        hosts = headers.getlist("host")
        if len(hosts) > 1 or (host is not None and not host_header_ok(host)):
            what = (
                "several Host headers" if len(hosts) > 1 else f"malformed Host header {_short(host or '')!r}"
            )
            msg = f"{what}: send one Host header, a name or address with an optional :port"
            await self._reject(scope, receive, send, rejection(400, "invalid_host", msg), ip)
            return
        if not policy.host_ok(host):
            names = (
                "localhost and loopback addresses"
                if policy.loopback
                else "the names in [security] allowed_hosts"
            )
            hint = " (add it to [security] allowed_hosts if clients use this name)"
            msg = f"Invalid Host header {_short(host or '')!r}: this server answers to {names}{hint}"
            await self._reject(scope, receive, send, rejection(421, "invalid_host", msg), ip)
            return
        origin = headers.get("origin")
        if not policy.origin_ok(origin):
            msg = (
                f"Invalid Origin header {_short(origin or '')!r}: "
                "not allowed (add it to [security] allowed_origins)"
            )
            await self._reject(scope, receive, send, rejection(403, "invalid_origin", msg), ip)
            return

        identity: str | None = None
        open_path = path in OBSERVABILITY_PATHS and (self.side or policy.public_metrics)
        if policy.auth and not open_path:
            presented = bearer_token(headers.get("authorization"))
            identity = policy.token_id(presented)
            if identity is None:
                wait = (
                    await shared_limits.hit(self.limiter, f"ip:{ip}", policy.rate_limit)
                    if policy.rate_limit and not self.side
                    else 0.0
                )
                if wait > 0:
                    await self._reject(scope, receive, send, self._too_many(policy, wait), ip)
                    return
                if presented is None:
                    reason, challenge = "unauthorized", f'Bearer realm="{REALM}"'
                    msg = (
                        "authentication required: send the header 'Authorization: Bearer <token>' "
                        "(a token from REASONKIT_AUTH_TOKENS or [security] auth_tokens_file)"
                    )
                else:
                    reason, challenge = (
                        "invalid_token",
                        f'Bearer realm="{REALM}", error="invalid_token", '
                        'error_description="the bearer token is not valid"',
                    )
                    msg = "invalid bearer token"
                await self._reject(
                    scope, receive, send, rejection(401, reason, msg, {"www-authenticate": challenge}), ip
                )
                return

        key = f"token:{identity}" if identity else f"ip:{ip}"
        scope.setdefault("state", {})["rk_client"] = key  # for the admission gate's per-client caps
        if policy.rate_limit and not self.side:
            wait = await shared_limits.hit(self.limiter, key, policy.rate_limit)
            if wait > 0:
                await self._reject(scope, receive, send, self._too_many(policy, wait), ip)
                return

        limit = policy.max_body
        too_large = rejection(
            413,
            "too_large",
            f"request body larger than the limit of {limit / 1048576:g} MiB ([security] max_request_size_mb)",
        )
        declared = headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await self._reject(scope, receive, send, too_large, ip)
                    return
            except ValueError:
                pass
        # Read (and count) the whole body before the app sees it: a chunked upload has no length.
        cached: deque[Message] = deque()
        size = 0
        more = True
        body_timeout = self.body_timeout()
        with anyio.move_on_after(body_timeout):  # a client trickling its body must not hold us
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    cached.append(message)
                    break
                size += len(message.get("body", b""))
                if size > limit:
                    await self._reject(scope, receive, send, too_large, ip)
                    return
                cached.append(message)
                more = bool(message.get("more_body", False))
        if cached and cached[-1]["type"] == "http.disconnect":
            logger.info(
                "HTTP {} {} from {}: the client disconnected", scope.get("method"), path, _short(ip, 64)
            )
            return
        if more:
            msg = f"request body not received within {body_timeout:g} s ([server] body_timeout_secs)"
            answer = rejection(408, "body_timeout", msg, {"connection": "close"})
            await self._reject(scope, receive, send, answer, ip)
            return
        if len(cached) > 1 and all(m["type"] == "http.request" for m in cached):
            body = b"".join(m.get("body", b"") for m in cached)
            cached = deque([{"type": "http.request", "body": body, "more_body": False}])
        busy = self._gatekeep(scope, cached, key)
        if busy is not None:
            await self._reject(scope, receive, send, busy, ip)
            return

        async def replay() -> Message:
            if cached:
                return cached.popleft()
            return await receive()

        try:
            await self.app(scope, replay, send)
        finally:  # a slot reserved for a call the tool handler never took (bad arguments, ...)
            ticket = scope["state"].pop(TICKET_KEY, None)
            if ticket is not None:
                ticket.release()

    def _gatekeep(self, scope: Scope, cached: deque[Message], client: str) -> Answer | None:
        """For a ThinkTool call: reserve its run slot now (handed to the tool handler in the scope
        state), or answer 503 + Retry-After when the gate is full or draining. A gate with a
        queue lets the call through to wait in the handler."""
        gate = self.gate
        if gate is None or self.side or scope.get("method") != "POST":
            return None
        try:
            msg: Any = json.loads(cached[0].get("body", b"") or b"null") if cached else None
        except ValueError:
            return None
        if not isinstance(msg, dict) or msg.get("method") != "tools/call":
            return None
        params: dict[str, Any] = msg["params"] if isinstance(msg.get("params"), dict) else {}
        if params.get("name") == "run_result" and not gate.draining:
            return None
        args: dict[str, Any] = params["arguments"] if isinstance(params.get("arguments"), dict) else {}
        background = str(args.get("background", "")).lower() in ("true", "1", "yes", "on")
        ticket = None if params.get("name") == "run_result" else gate.try_admit(client, background=background)
        if ticket is not None:
            scope["state"][TICKET_KEY] = ticket
            return None
        if not gate.full():
            return None  # the queue has room, or a per-client refusal the handler words
        secs = gate.retry_after()
        if gate.draining:
            reason, text = "draining", "the server is shutting down; retry on another instance"
        else:
            reason, text = "busy", "all run slots are taken ([server] max_concurrent_runs)"
            if self.metrics is not None:
                self.metrics.admission.labels(outcome="rejected", reason="capacity").inc()
        return rejection(503, reason, f"busy, retry in {secs} s: {text}", {"retry-after": str(secs)})

    def _too_many(self, policy: SecurityPolicy, wait: float) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        secs = max(1, math.ceil(wait))
        msg = (
            f"rate limit of {policy.rate_limit} requests per minute exceeded "
            f"([security] rate_limit_per_minute); retry after {secs} s"
        )
        return rejection(429, "rate_limited", msg, {"retry-after": str(secs)})

    async def _reject(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        answer: tuple[int, bytes, list[tuple[bytes, bytes]]],
        ip: str,
    ) -> None:
        status, body, headers = answer
        reason = json.loads(body)["error"]["data"]["reason"]
        if self.metrics is not None:
            self.metrics.http_rejected.labels(reason=reason).inc()
        logger.bind(status=status).info(
            "HTTP {} {} from {}: {} ({})",
            scope.get("method"),
            _short(str(scope.get("path"))),
            _short(ip, 64),
            status,
            reason,
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
