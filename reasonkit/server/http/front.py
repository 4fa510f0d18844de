"""The admission front: the outermost ASGI layer of the main app, in front of the gate (gate.py).

Over capacity (every run slot taken and the queue full, or the server draining) a ThinkTool call
is refused here with 503 + `Retry-After` before anything reads its body: no Host/token checks, no
body read, no `json.loads`, no SDK. The refusal is sent in the request task's first turn on the
event loop, so it never waits for the loop to come back to it after a body read, and it never
queues behind the admitted calls' work in that task. The call is recognised by the MCP routing
headers a client of the 2026 protocol era sends with every request (`Mcp-Method: tools/call`,
`Mcp-Name: <tool>`); the SDK rejects a request whose headers disagree with its body, so a client can
only get itself refused by mislabelling. A request without these headers (a handshake-era client)
goes on to the gate, whose run-slot rule (reservation.py) reads the body and decides as before.

Why not uvicorn's `limit_concurrency`: it counts connections and tasks, not runs, so it would
refuse health probes, `tools/list` and `run_result` polls as readily as a new run, and its 503 is a
plain-text body without `Retry-After`. Refusing before the Host and token checks reveals nothing:
the answer carries no data, and the token-free readiness probe already reports the load."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasonkit.server.http.reservation import busy_answer
from reasonkit.server.http.rule import send_refusal

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.capacity.run_slots import RunSlots

MCP_PATH = "/mcp"
_METHOD, _NAME = b"mcp-method", b"mcp-name"
_NOT_A_RUN = b"run_result"  # reads a run; refused only while draining


class AdmissionFront:
    """Refuse a ThinkTool call at once when `run_slots` is full (see the module docstring)."""

    def __init__(self, app: ASGIApp, run_slots: RunSlots, metrics: Metrics | None = None):
        self.app = app
        self.slots = run_slots
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and self._refuses(scope):
            await send_refusal(scope, send, busy_answer(self.slots, self.metrics), self.metrics)
        else:
            await self.app(scope, receive, send)

    def _refuses(self, scope: Scope) -> bool:
        if scope.get("path") != MCP_PATH or not self.slots.full():
            return False
        method = name = None
        for key, value in scope["headers"]:
            if key == _METHOD:
                method = value
            elif key == _NAME:
                name = value
        if method != b"tools/call":
            return False
        return self.slots.draining or name != _NOT_A_RUN
