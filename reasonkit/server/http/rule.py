"""What every rule of the HTTP gate (gate.py) shares: its configuration, the ASGI shape of a rule,
and the refusal, a JSON-RPC error body (`id: null`, so MCP clients show the message) counted in
`reasonkit_http_rejected_total{reason}` and logged without any header value that could hold a
secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from reasonkit.server.http.security import ERROR_CODES, SecurityPolicy

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.capacity.run_slots import RunSlots

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, body, headers

# Reasons of the gate's own refusals (the security ones are in security.ERROR_CODES).
OWN_CODES = {"busy": -32000, "draining": -32000, "body_timeout": -32600, "too_deep": -32700}


def rejection(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> Answer:
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


def short(value: str, n: int = 80) -> str:
    """`value` as printable ASCII, cut to `n` characters: client-sent text fit for a log line."""
    v = value.encode("ascii", "backslashreplace").decode()
    return v if len(v) <= n else v[:n] + "..."


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True)
class GateConfig:
    """What the rules read. `policy` and `body_timeout` are callables, read on every request, so a
    SIGHUP reload takes effect at once; `side` is the metrics/health port (no rate limit, no run
    slots); `run_slots` is the process's run-slot gate (None: no reservation here); `limiter` the
    per-client rate limiter (shared through Redis when configured)."""

    policy: Callable[[], SecurityPolicy]
    metrics: Metrics | None
    side: bool
    run_slots: RunSlots | None
    body_timeout: Callable[[], float]
    limiter: Any


class Rule:
    """One concern of the gate, as a pure ASGI middleware around the next rule (Starlette's style).
    A rule that only looks at the request line and headers implements `check` (None lets the
    request through); one that handles the body or wraps the app overrides `__call__`."""

    def __init__(self, app: ASGIApp, config: GateConfig):
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.check(scope)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await self.refuse(scope, send, answer)

    async def check(self, scope: Scope) -> Answer | None:
        return None

    async def refuse(self, scope: Scope, send: Send, answer: Answer) -> None:
        await send_refusal(scope, send, answer, self.config.metrics)


async def send_refusal(scope: Scope, send: Send, answer: Answer, metrics: Metrics | None) -> None:
    """Send a refusal, counted and logged the same way wherever it is made (the gate's rules, the
    admission front)."""
    status, body, headers = answer
    reason = json.loads(body)["error"]["data"]["reason"]
    if metrics is not None:
        metrics.http_rejected.labels(reason=reason).inc()
    logger.bind(status=status).info(
        "HTTP {} {} from {}: {} ({})",
        scope.get("method"),
        short(str(scope.get("path"))),
        short(client_ip(scope), 64),
        status,
        reason,
    )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
