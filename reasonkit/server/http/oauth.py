"""OAuth 2.1 resource server, as the MCP authorization spec asks: the gate's `OAuthCheck` rule, the
`WWW-Authenticate` challenges, and the Protected Resource Metadata (RFC 9728).

With `[server.oauth]` set, a request's bearer token is either one of the static tokens (the token
rule after this one answers for those) or an access token of the configured issuer, verified by
oauth_tokens.py. The answers:

- no token: 401, `WWW-Authenticate: Bearer resource_metadata="<metadata URL>"` (and `scope=` with
  the required scopes), so an MCP client can find the authorization server and start a login;
- a token that is not valid: 401 with `error="invalid_token"`; one without a required scope: 403
  with `error="insufficient_scope"` and `scope=` (step-up authorization);
- the issuer's keys cannot be fetched: 503 with `Retry-After`.

The metadata document is served without a token at `/.well-known/oauth-protected-resource`, its
`/mcp` suffixed form (RFC 9728, section 3.1: the resource's path after the well-known name) and the
suffix of the configured resource URL's own path. Its URL in the challenges comes from the
configured audience, never from the request's Host header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reasonkit.principal import Principal
from reasonkit.server.capacity.run_slots import CLIENT_KEY, PRINCIPAL_KEY
from reasonkit.server.http.checks import auth_brake, session_user
from reasonkit.server.http.rule import Answer, Rule, client_ip, rejection
from reasonkit.server.http.security import (
    METADATA_PATH,
    REALM,
    SecurityPolicy,
    bearer_token,
    open_path,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Scope

    from reasonkit.server.http.oauth_tokens import Refusal, TokenVerifier


def metadata_url(audience: str) -> str:
    """Where the metadata of the resource `audience` is (RFC 9728, section 3.1)."""
    parts = urlsplit(audience)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, METADATA_PATH + path, "", ""))


def metadata(verifier: TokenVerifier) -> dict[str, object]:
    """The Protected Resource Metadata document (RFC 9728, section 2). `scopes_supported` lists the
    scopes a client needs (the required ones); the admin scope is not advertised, so no client asks
    for more than it needs."""
    return {
        "resource": verifier.audience,
        "authorization_servers": [verifier.issuer],
        "scopes_supported": list(verifier.required_scopes),
        "bearer_methods_supported": ["header"],
        "resource_name": "ReasonKit",
    }


def challenge(verifier: TokenVerifier, refusal: Refusal | None = None) -> str:
    """The `WWW-Authenticate` value of a 401 or 403 (RFC 6750, section 3; RFC 9728, section 5.1)."""
    parts = [f'realm="{REALM}"', f'resource_metadata="{metadata_url(verifier.audience)}"']
    if refusal is not None:
        parts += [f'error="{refusal.error}"', f'error_description="{refusal.description}"']
    if verifier.required_scopes:
        parts.append(f'scope="{" ".join(verifier.required_scopes)}"')
    return "Bearer " + ", ".join(parts)


def refusal_answer(verifier: TokenVerifier, refusal: Refusal | None) -> Answer:
    """The gate's answer to a missing (None) or refused token."""
    if refusal is None:
        msg = (
            "authentication required: send 'Authorization: Bearer <token>' with an access token of "
            f"{verifier.issuer} for {verifier.audience} (or a static token)"
        )
        return rejection(401, "unauthorized", msg, {"www-authenticate": challenge(verifier)})
    if refusal.status == 503:
        msg = f"access tokens cannot be verified now: {refusal.description}"
        return rejection(503, "issuer_unavailable", msg, {"retry-after": str(refusal.retry_after)})
    headers = {"www-authenticate": challenge(verifier, refusal)}
    return rejection(refusal.status, refusal.error, f"{refusal.error}: {refusal.description}", headers)


async def authenticate(policy: SecurityPolicy, header: str | None) -> Principal | Answer:
    """Who presents the `Authorization` header `header` under `policy`: a static token's principal,
    an access token's, `local` without authentication, or the refusal. The run pages of the side
    port use it (the main port's gate has done the same)."""
    presented = bearer_token(header)
    principal = policy.principal(presented)
    if principal is not None:
        return principal
    if policy.oauth is None:
        return rejection(
            401,
            "unauthorized",
            "authentication required: send the header 'Authorization: Bearer <token>'",
            {"www-authenticate": f'Bearer realm="{REALM}"'},
        )
    if presented is None:
        return refusal_answer(policy.oauth, None)
    outcome = await policy.oauth.verify(presented, policy.admins)
    return outcome if isinstance(outcome, Principal) else refusal_answer(policy.oauth, outcome)


class OAuthCheck(Rule):
    """Access tokens of the configured issuer (oauth_tokens.py), before the static token rule:
    a static token passes on to that rule; an access token that verifies makes the request's
    principal (`source="oauth"`); anything else is refused here with the challenges of the MCP
    authorization spec. A refusal first counts against the IP's rate limit, as a wrong static token
    does. Without `[server.oauth]`, and on the paths that need no token, it does nothing."""

    async def check(self, scope: Scope) -> Answer | None:
        policy = self.config.policy()
        verifier = policy.oauth
        if verifier is None or open_path(scope.get("path", ""), self.config.side, policy):
            return None
        presented = bearer_token(Headers(scope=scope).get("authorization"))
        if presented is not None and policy.token_id(presented) is not None:
            return None  # a static token: the token rule's
        outcome = None if presented is None else await verifier.verify(presented, policy.admins)
        if isinstance(outcome, Principal):
            state = scope.setdefault("state", {})
            state[PRINCIPAL_KEY] = outcome
            state[CLIENT_KEY] = f"oauth:{outcome.name}"
            scope["user"] = session_user(outcome)
            return None
        braked = await auth_brake(self.config, policy, client_ip(scope))
        return braked or refusal_answer(verifier, outcome)


def metadata_routes(policy: Callable[[], SecurityPolicy | None]) -> list[Route]:
    """`/.well-known/oauth-protected-resource[/<path>]`: the metadata of the current policy's
    resource (404 without `[server.oauth]`, or for a path that is not this resource's)."""

    async def document(request: Request) -> Response:
        current = policy()
        verifier = current.oauth if current is not None else None
        suffix = request.path_params.get("suffix", "")
        if verifier is None:
            return JSONResponse({"error": "OAuth is not configured on this server"}, status_code=404)
        own = urlsplit(verifier.audience).path.rstrip("/")
        if suffix and f"/{suffix}" not in (own, "/mcp"):
            return JSONResponse({"error": "no such protected resource"}, status_code=404)
        return JSONResponse(metadata(verifier), headers={"cache-control": "max-age=300"})

    return [
        Route(METADATA_PATH, document, methods=["GET"]),
        Route(METADATA_PATH + "/{suffix:path}", document, methods=["GET"]),
    ]
