"""The gate's last rule: a ThinkTool call (`tools/call` of any tool but `run_result`) reserves its
run slot (reasonkit/server/capacity/run_slots.py) before the MCP SDK parses anything, so a burst
beyond capacity is sorted out at the door: 503 with `Retry-After` when every slot is taken and the
queue is full, and for any tool call while the server drains. The reserved slot travels to the tool
handler in the scope state (`TICKET_KEY`); one the handler never took (bad arguments, ...) is given
back when the request ends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reasonkit.errors import InputError
from reasonkit.principal import Principal
from reasonkit.protocol.inputs import background_flag
from reasonkit.server.capacity.run_slots import CLIENT_KEY, PRINCIPAL_KEY, TICKET_KEY, RunSlots
from reasonkit.server.http.rule import Answer, Rule, rejection

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from reasonkit.observability.metrics import Metrics


class RunSlotReservation(Rule):
    """Reserve a ThinkTool call's run slot, or answer 503 (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slots = self.config.run_slots
        if slots is None or self.config.side or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        first = await receive()  # the whole body: BodyDeadline handed it over in one message
        params = _tool_call(first)
        busy = None if params is None else self._reserve(slots, scope, params)
        if busy is not None:
            await self.refuse(scope, send, busy)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        try:
            await self.app(scope, replay, send)
        finally:  # a slot reserved for a call the tool handler never took
            ticket = scope["state"].pop(TICKET_KEY, None)
            if ticket is not None:
                ticket.release()

    def _reserve(self, slots: RunSlots, scope: Scope, params: dict[str, Any]) -> Answer | None:
        """Reserve the call's slot (None: admitted, or the handler decides: the queue has room, or
        a per-client refusal it words), else the 503 answer."""
        if params.get("name") == "run_result":
            if not slots.draining:
                return None
            ticket = None
        else:
            args: dict[str, Any] = params["arguments"] if isinstance(params.get("arguments"), dict) else {}
            try:
                background = background_flag(args.get("background"))
            except InputError:
                return None  # the tool handler refuses the call with the input's error
            principal = scope["state"].get(PRINCIPAL_KEY)
            capped = not (isinstance(principal, Principal) and principal.admin)
            ticket = slots.try_admit(scope["state"][CLIENT_KEY], background=background, capped=capped)
        if ticket is not None:
            scope["state"][TICKET_KEY] = ticket
            return None
        return self._busy(slots) if slots.full() else None

    def _busy(self, slots: RunSlots) -> Answer:
        return busy_answer(slots, self.config.metrics)


def busy_answer(slots: RunSlots, metrics: Metrics | None) -> Answer:
    """The 503 of a full (or draining) server, with `Retry-After`; a capacity refusal is counted in
    the admission metric (here and in the admission front, front.py)."""
    secs = slots.retry_after()
    if slots.draining:
        reason, text = "draining", "the server is shutting down; retry on another instance"
    else:
        reason, text = "busy", "all run slots are taken ([server] max_concurrent_runs)"
        if metrics is not None:
            metrics.admission.labels(outcome="rejected", reason="capacity").inc()
    return rejection(503, reason, f"busy, retry in {secs} s: {text}", {"retry-after": str(secs)})


def _tool_call(message: Message) -> dict[str, Any] | None:
    """The params of a JSON-RPC `tools/call` body ({} when it has none), else None."""
    try:
        msg: Any = json.loads(message.get("body", b"") or b"null")
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("method") != "tools/call":
        return None
    return msg["params"] if isinstance(msg.get("params"), dict) else {}
