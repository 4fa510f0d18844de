"""The gate's rules that read only the request line and headers: Host (400, 421) and Origin (403)
against DNS rebinding, the bearer token (401), and the per-client rate limit (429). Each is one
`Rule.check` (rule.py); gate.py puts them in order."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.datastructures import Headers

from reasonkit.principal import Principal
from reasonkit.server.capacity import shared_limits
from reasonkit.server.capacity.run_slots import CLIENT_KEY, PRINCIPAL_KEY
from reasonkit.server.http.connections import host_header_ok
from reasonkit.server.http.rule import Answer, Rule, client_ip, rejection, short
from reasonkit.server.http.security import REALM, SecurityPolicy, bearer_token, open_path

if TYPE_CHECKING:
    from starlette.types import Scope

    from reasonkit.server.http.rule import GateConfig


class HostCheck(Rule):
    """One well-formed Host header (400) naming this server (421)."""

    async def check(self, scope: Scope) -> Answer | None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        hosts = headers.getlist("host")
        if len(hosts) > 1 or (host is not None and not host_header_ok(host)):
            what = (
                "several Host headers" if len(hosts) > 1 else f"malformed Host header {short(host or '')!r}"
            )
            msg = f"{what}: send one Host header, a name or address with an optional :port"
            return rejection(400, "invalid_host", msg)
        policy = self.config.policy()
        if policy.host_ok(host):
            return None
        names = (
            "localhost and loopback addresses" if policy.loopback else "the names in [security] allowed_hosts"
        )
        hint = " (add it to [security] allowed_hosts if clients use this name)"
        msg = f"Invalid Host header {short(host or '')!r}: this server answers to {names}{hint}"
        return rejection(421, "invalid_host", msg)


class OriginCheck(Rule):
    """A browser's Origin header must be an allowed one (403)."""

    async def check(self, scope: Scope) -> Answer | None:
        origin = Headers(scope=scope).get("origin")
        if self.config.policy().origin_ok(origin):
            return None
        msg = (
            f"Invalid Origin header {short(origin or '')!r}: "
            "not allowed (add it to [security] allowed_origins)"
        )
        return rejection(403, "invalid_origin", msg)


class TokenCheck(Rule):
    """Who the client is: the bearer token's principal when tokens are configured (401 without a
    valid one), else `local` (reasonkit/principal.py), recorded in the scope state (`PRINCIPAL_KEY`)
    for the MCP handlers, the run pages and the run slots; and whom the rate limit counts (the
    token's principal, else the peer address: `CLIENT_KEY`). `/metrics` and `/health` are open on
    the side port, and on the main port with `[security] public_metrics`. A failed authentication
    first counts against the IP's rate limit (a brake on token guessing)."""

    async def check(self, scope: Scope) -> Answer | None:
        policy = self.config.policy()
        ip = client_ip(scope)
        state = scope.setdefault("state", {})
        verified = state.get(PRINCIPAL_KEY)
        if isinstance(verified, Principal) and verified.source == "oauth":
            return None  # an access token the OAuth rule (oauth.py) verified
        if policy.auth and not open_path(scope.get("path", ""), self.config.side, policy):
            presented = bearer_token(Headers(scope=scope).get("authorization"))
            principal = policy.principal(presented)
            if principal is None:
                return await self._refusal(policy, ip, presented)
            state[PRINCIPAL_KEY] = principal
            state[CLIENT_KEY] = f"token:{principal.name}"
            scope["user"] = session_user(principal)
            return None
        if not policy.auth:
            state[PRINCIPAL_KEY] = policy.principal(None)
        state[CLIENT_KEY] = f"ip:{ip}"
        return None

    async def _refusal(self, policy: SecurityPolicy, ip: str, presented: str | None) -> Answer:
        braked = await auth_brake(self.config, policy, ip)
        if braked is not None:
            return braked
        if presented is None:
            msg = (
                "authentication required: send the header 'Authorization: Bearer <token>' "
                "(a token from REASONKIT_AUTH_TOKENS or [security] auth_tokens_file)"
            )
            return rejection(401, "unauthorized", msg, {"www-authenticate": f'Bearer realm="{REALM}"'})
        challenge = (
            f'Bearer realm="{REALM}", error="invalid_token", '
            'error_description="the bearer token is not valid"'
        )
        return rejection(401, "invalid_token", "invalid bearer token", {"www-authenticate": challenge})


class ClientRateLimit(Rule):
    """`[security] rate_limit_per_minute` per client (429 with Retry-After); not on the side port."""

    async def check(self, scope: Scope) -> Answer | None:
        policy = self.config.policy()
        if not policy.rate_limit or self.config.side:
            return None
        wait = await shared_limits.hit(self.config.limiter, scope["state"][CLIENT_KEY], policy.rate_limit)
        return too_many(policy, wait) if wait > 0 else None


async def auth_brake(config: GateConfig, policy: SecurityPolicy, ip: str) -> Answer | None:
    """A failed authentication counts against the IP's rate limit (a brake on guessing tokens):
    429 once it is spent, else None."""
    if policy.rate_limit and not config.side:
        wait = await shared_limits.hit(config.limiter, f"ip:{ip}", policy.rate_limit)
        if wait > 0:
            return too_many(policy, wait)
    return None


def session_user(principal: Principal) -> AuthenticatedUser:
    """The principal as the MCP SDK's authenticated user: its `StreamableHTTPSessionManager` ties a
    stateful session to the user that opened it and answers anyone else 404, exactly as for an
    unknown session (issue 23, hole 13). The token itself is not kept."""
    token = AccessToken(token="", client_id=principal.name, scopes=[], subject=principal.name)
    return AuthenticatedUser(token)


def too_many(policy: SecurityPolicy, wait: float) -> Answer:
    secs = max(1, math.ceil(wait))
    msg = (
        f"rate limit of {policy.rate_limit} requests per minute exceeded "
        f"([security] rate_limit_per_minute); retry after {secs} s"
    )
    return rejection(429, "rate_limited", msg, {"retry-after": str(secs)})
