"""Who a request comes from (`Principal`), and what that principal may see.

The HTTP gate's token rule makes one for every request (reasonkit/server/http/checks.py): the name
of the static bearer token that matched (`name:token` lines), `token-<first 12 hex of its sha256>`
for an unnamed token, or `local` where no tokens are configured (stdio, a tokenless loopback or
explicitly unauthenticated server: there is only one user then). The verifier of OAuth access tokens
(reasonkit/server/http/oauth_tokens.py) makes one the same way (`source="oauth"`, the name
`<iss>#<sub>`: `oauth_name`). The MCP handlers and the
run pages read it from the request; a run stores its principal's name as its `owner`.

An admin sees every run; everyone else sees only the runs it owns. `local` is an admin: without
tokens there is no one else, and `rk runs` on the machine reads the store directly anyway. Runs
stored before owners were recorded have no owner: only admins see them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Source = Literal["token", "oauth", "local"]
LOCAL_NAME = "local"


@dataclass(frozen=True)
class Principal:
    """One caller: `name` (what a run's `owner` holds), whether it sees every run, and how it was
    authenticated."""

    name: str
    admin: bool = False
    source: Source = "token"

    def may_see(self, owner: str | None) -> bool:
        """Whether a run owned by `owner` (None: a run stored before owners existed) is this
        principal's to see."""
        return self.admin or (owner is not None and owner == self.name)


LOCAL = Principal(LOCAL_NAME, admin=True, source="local")


def token_name(token: bytes) -> str:
    """The principal name of an unnamed token: stable across restarts and replicas, and no clue to
    the token itself (a hash prefix)."""
    return "token-" + hashlib.sha256(token).hexdigest()[:12]


def oauth_name(issuer: str, subject: str) -> str:
    """The principal name of an OAuth access token: its issuer and subject, `<iss>#<sub>`. A subject
    is unique only within its issuer, and a token name cannot contain `:`, so no OAuth principal can
    take a static token's name (and its runs)."""
    return f"{issuer}#{subject}"
