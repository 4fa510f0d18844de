"""The gate's rules for the request body: its size (413: the declared `Content-Length`, and the
bytes actually received, so a chunked upload cannot slip past), its deadline (408: the whole
body within `[server] body_timeout_secs`, so a client trickling its body cannot hold the server)
and its nesting depth (400, a JSON-RPC parse error: Python's JSON parser recurses once per level,
so a body nested a thousand levels deep would end as a `RecursionError`, a 500 and a traceback).
The body is read in full before the app sees it, so the rules after these can look at it."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
from loguru import logger
from starlette.datastructures import Headers

from reasonkit.jsonguard import MAX_DEPTH, depth_exceeds
from reasonkit.server.http.rule import Answer, Rule, client_ip, rejection, short

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send


class BodySizeLimit(Rule):
    """`[security] max_request_size_mb`: a larger declared length is refused before any byte is
    read; while the body arrives, the first chunk past the limit cancels the reading (the rest is
    never read) and the answer is 413."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.config.policy().max_body
        if _declared_length(scope) > limit:
            await self.refuse(scope, send, _too_large(limit))
            return
        received = 0
        with anyio.CancelScope() as reading:

            async def counted() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        reading.cancel()
                        await anyio.lowlevel.checkpoint()  # the cancellation lands here
                return message

            await self.app(scope, counted, send)
        if reading.cancelled_caught:
            await self.refuse(scope, send, _too_large(limit))


def _declared_length(scope: Scope) -> int:
    try:
        return int(Headers(scope=scope).get("content-length") or 0)
    except ValueError:
        return 0


def _too_large(limit: int) -> Answer:
    msg = f"request body larger than the limit of {limit / 1048576:g} MiB ([security] max_request_size_mb)"
    return rejection(413, "too_large", msg)


class BodyDeadline(Rule):
    """Read the whole body within `body_timeout()` seconds (else 408, closing the connection), then
    hand the app one message with all of it. A client that disconnects meanwhile is logged at info
    and gets no answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout = self.config.body_timeout()
        cached: deque[Message] = deque()
        with anyio.move_on_after(timeout):  # a client trickling its body must not hold us
            await _read_body(receive, cached)
        if cached and cached[-1]["type"] == "http.disconnect":
            logger.info(
                "HTTP {} {} from {}: the client disconnected",
                scope.get("method"),
                scope.get("path", ""),
                short(client_ip(scope), 64),
            )
            return
        if not _complete(cached):
            msg = f"request body not received within {timeout:g} s ([server] body_timeout_secs)"
            await self.refuse(scope, send, rejection(408, "body_timeout", msg, {"connection": "close"}))
            return
        if len(cached) > 1 and all(m["type"] == "http.request" for m in cached):
            body = b"".join(m.get("body", b"") for m in cached)
            cached = deque([{"type": "http.request", "body": body, "more_body": False}])

        async def replay() -> Message:
            if cached:
                return cached.popleft()
            return await receive()

        await self.app(scope, replay, send)


async def _read_body(receive: Receive, cached: deque[Message]) -> None:
    """Receive into `cached` up to the last body chunk, or up to another message (a disconnect)."""
    while True:
        message = await receive()
        cached.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _complete(cached: deque[Message]) -> bool:
    """Whether the body's last chunk came (a disconnect or any other message does not end it)."""
    return bool(cached) and cached[-1]["type"] == "http.request" and not cached[-1].get("more_body", False)


class JsonDepthLimit(Rule):
    """A body whose arrays and objects nest deeper than `jsonguard.MAX_DEPTH` is refused with 400
    and a JSON-RPC parse error before anything parses it. Runs after `BodyDeadline`, which hands on
    the whole body as one message."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] == "http.request" and depth_exceeds(first.get("body", b"")):
            msg = f"parse error: JSON nested deeper than {MAX_DEPTH} levels"
            await self.refuse(scope, send, rejection(400, "too_deep", msg))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, replay, send)
