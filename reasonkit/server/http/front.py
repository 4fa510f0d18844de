"""The admission front: the outermost ASGI layer of the main app, in front of the gate (gate.py).

Over capacity (every run slot taken and the queue full, or the server draining) a ThinkTool call
is refused here with 503 + `Retry-After` before anything reads its body: no Host/token checks, no
body read, no `json.loads`, no SDK. The call is recognised by the MCP routing headers a client of
the 2026 protocol era sends with every request (`Mcp-Method: tools/call`, `Mcp-Name: <tool>`); the
SDK rejects a request whose headers disagree with its body, so a client can only get itself refused
by mislabelling. A request without these headers (a handshake-era client) goes on to the gate,
whose run-slot rule (reservation.py) reads the body and decides as before.

A refusal never waits for admitted work. Requests that arrive together become tasks that the
event loop runs in turn; a call the front lets through counts as pending (it will take its slot in
the gate a moment later) and yields once before its work starts, so the calls behind it in the same
burst are counted against the room that is left and refused in their first turn, before any
admitted call reads its body, runs the gate, the SDK or its run.

Why not uvicorn's `limit_concurrency`: it counts connections and tasks, not runs, so it would
refuse health probes, `tools/list` and `run_result` polls as readily as a new run, and its 503 is a
plain-text body without `Retry-After`. Refusing before the Host and token checks reveals nothing:
the answer carries no data, and the token-free readiness probe already reports the load."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.lowlevel

from reasonkit.server.http.reservation import busy_answer
from reasonkit.server.http.rule import send_refusal

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.capacity.run_slots import RunSlots

MCP_PATH = "/mcp"
_METHOD, _NAME = b"mcp-method", b"mcp-name"
_NOT_A_RUN = b"run_result"  # reads a run: takes no slot, refused only while draining


class AdmissionFront:
    """Refuse a ThinkTool call at once when `run_slots` has no room for it (see the module
    docstring). `pending` counts the routed calls let through that have not yet reached the gate's
    run-slot reservation: they will take the room there, so a burst that arrives together is sorted
    out here, call by call, before any of it is read."""

    def __init__(self, app: ASGIApp, run_slots: RunSlots, metrics: Metrics | None = None):
        self.app = app
        self.slots = run_slots
        self.metrics = metrics
        self.pending = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = scope["type"] == "http" and scope.get("method") == "POST" and self._run_call(scope)
        if not run:
            await self.app(scope, receive, send)
        elif self.pending >= self.slots.room():
            await send_refusal(scope, send, busy_answer(self.slots, self.metrics), self.metrics)
        else:
            await self._let_through(scope, receive, send)

    async def _let_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the call as pending until the gate reads its body (the reservation follows in the
        same step), and yield once first: the calls that arrived with it get their answer (a
        refusal among them) before this one's work (the gate, the SDK, its run) takes the loop."""
        self.pending += 1
        counted = True

        async def first_read() -> Message:
            nonlocal counted
            if counted:
                counted = False
                self.pending -= 1
            return await receive()

        try:
            await anyio.lowlevel.checkpoint()
            await self.app(scope, first_read, send)
        finally:
            if counted:
                self.pending -= 1

    def _run_call(self, scope: Scope) -> bool:
        """A `tools/call` by its routing headers that takes a run slot (any tool while draining)."""
        if scope.get("path") != MCP_PATH:
            return False
        method = name = None
        for key, value in scope["headers"]:
            if key == _METHOD:
                method = value
            elif key == _NAME:
                name = value
        return method == b"tools/call" and (name != _NOT_A_RUN or self.slots.draining)
