"""Connection hygiene for the HTTP server (uvicorn + h11): the settings uvicorn gets from `[server]`,
and an h11 protocol that closes a connection whose request headers do not arrive in time.

- `max_connections` -> uvicorn's `limit_concurrency` (beyond it: 503 at once);
- `keep_alive_secs` -> `timeout_keep_alive`; header blocks are capped at 64 KiB (h11);
- `header_timeout_secs`: from the connection's start (and from the end of each response on a
  keep-alive connection) a client has this long to finish a request's headers, else the connection
  is closed (before any authentication, so slow clients cannot hold connections for free);
- the body timeout is the HTTP middleware's (`body_timeout_secs`, 408);
- `trusted_proxies` -> `forwarded_allow_ips`: X-Forwarded-For/-Proto are believed only from those
  peers; from any other peer they are ignored, so they cannot move a client to another rate-limit
  bucket.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

import h11
from loguru import logger
from uvicorn.protocols.http.h11_impl import H11Protocol

from reasonkit.config import Settings

MAX_HEADER_BYTES = 64 * 1024


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a request-header deadline (`header_timeout` seconds)."""

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            logger.debug(
                "closing a connection from {}: no complete request headers within {:g} s",
                self.client[0] if self.client else "?",
                self.header_timeout,
            )
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle or self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()  # a request's headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.DONE):
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn.Config arguments that come from `[server]`."""
    s = settings.server
    protocol = type("ReasonKitH11", (HeaderTimeoutH11,), {"header_timeout": s.header_timeout_secs})
    proxies = list(s.trusted_proxies)
    return {
        "http": protocol,
        "limit_concurrency": s.max_connections,
        "timeout_keep_alive": s.keep_alive_secs,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or "",
    }


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?")


def host_header_ok(value: str) -> bool:
    """Strict `Host` syntax (RFC 9110/3986): a DNS name, an IPv4 address or a bracketed IPv6 address,
    then at most one `:port` of 1-5 digits (<= 65535). Nothing else: no user info, path, spaces,
    second colon, or text after the brackets. Which hosts are allowed is the security policy's
    question; this one is only whether the header is well formed."""
    v = value.lower()
    if not v or len(v) > 300:
        return False
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return False
        try:
            ipaddress.IPv6Address(v[1:end])
        except ValueError:
            return False
        rest = v[end + 1 :]
    else:
        host, _, port = v.partition(":")
        if not _HOST_NAME.fullmatch(host):
            return False
        rest = f":{port}" if _ else ""
    if not rest:
        return True
    port = rest[1:]
    if port == "":  # `host:` (an empty port) is allowed by RFC 3986
        return rest == ":"
    return rest[0] == ":" and port.isdigit() and len(port) <= 5 and int(port) <= 65535
