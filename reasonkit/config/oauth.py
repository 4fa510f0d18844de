"""`[server.oauth]`: this server as an OAuth 2.1 resource server (the MCP authorization spec).

The settings name the authorization server (`issuer`) and this server's resource URL (`audience`);
they are checked when the settings load, so a bad value stops `rk serve-mcp` at start and makes a
SIGHUP reload fail as a whole (the running settings stay). Tokens are verified in
reasonkit/server/http/oauth.py.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from reasonkit.config.base import CommaList, Section

# http:// is accepted for these hosts only (development and tests); everything else is HTTPS.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, what: str) -> str:
    """`value` as an absolute HTTPS URL (http:// on a loopback host), without query or fragment, or
    ValueError saying what is wrong: a token's `iss` and `aud` are compared with these strings, and
    keys fetched over plain HTTP from elsewhere could be anyone's."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{what} must be an absolute https:// URL (got {value!r})")
    if parts.scheme == "http" and not _loopback(host):
        raise ValueError(
            f"{what} must use https:// ({value!r}); plain http:// is accepted only for a loopback "
            "host (127.0.0.1, ::1, localhost)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must have no query or fragment (got {value!r})")
    return value


class OAuthSettings(Section):
    issuer: str | None = Field(
        None,
        description="OAuth 2.1 authorization server that issues access tokens for this server (its `iss`, "
        "e.g. `https://idp.example.com/realms/rk`); its keys come from the `jwks_uri` of its "
        "`/.well-known/oauth-authorization-server` or `/.well-known/openid-configuration`. HTTPS, or "
        "http:// on a loopback host. Set with `audience`; bearer tokens from the token file keep working "
        "beside it.",
    )
    audience: str | None = Field(
        None,
        description="This server's resource URL (RFC 8707), e.g. `https://rk.example.com/mcp`: an access "
        "token's `aud` must name it, and the Protected Resource Metadata "
        "(`/.well-known/oauth-protected-resource`) gives it as `resource`.",
    )
    accepted_audiences: CommaList = Field(
        default_factory=list,
        description="Further `aud` values accepted beside `audience`, for authorization servers that name "
        "this server otherwise in its tokens (Entra ID v2 tokens carry the API's application (client) "
        "ID). Empty: only `audience`.",
    )
    required_scopes: CommaList = Field(
        default_factory=list,
        description="Scopes every access token must carry (e.g. `mcp:tools`); a token without one of "
        "them gets 403 `insufficient_scope`. Empty: none required.",
    )
    admin_scope: str = Field(
        "reasonkit:admin",
        description="The scope that makes a token's principal an admin (sees every run, like "
        "`[server] admin_principals`).",
    )

    @field_validator("issuer", "audience")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None or not value.strip() else check_url(value.strip(), str(info.field_name))

    @model_validator(mode="after")
    def _both(self) -> OAuthSettings:
        if (self.issuer is None) != (self.audience is None):
            missing = "audience" if self.audience is None else "issuer"
            raise ValueError(
                f"[server.oauth] {missing} is not set: OAuth needs both the issuer and this server's "
                "resource URL (REASONKIT_OAUTH_ISSUER, REASONKIT_OAUTH_AUDIENCE)"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None
