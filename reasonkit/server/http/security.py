"""Inbound security for HTTP mode: bearer tokens, Host/Origin checks (DNS rebinding), body size
and the per-client rate limit, as one `SecurityPolicy` that the rules of the HTTP gate enforce on
every request (gate.py gives their order; probes pass untouched). `/metrics` and `/health` are open
on the side port, and on the main port only with `[security] public_metrics`; failed
authentications count against the IP's rate limit too (a brake on token guessing).

Rejections carry a JSON-RPC error body (`id: null`), so MCP clients show the message; they are
counted in `reasonkit_http_rejected_total{reason}` and logged without any header values that could
hold a secret. The policy (`SecurityPolicy`) is immutable and swapped as a whole on SIGHUP.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loguru import logger

from reasonkit.errors import SecurityError
from reasonkit.principal import LOCAL, Principal, token_name

if TYPE_CHECKING:
    from reasonkit.config import Settings
    from reasonkit.server.http.oauth_tokens import TokenVerifier

TOKENS_ENV = "REASONKIT_AUTH_TOKENS"
REALM = "reasonkit"
PROBE_PATHS = frozenset({"/health/live", "/health/ready", "/live", "/ready"})
OBSERVABILITY_PATHS = frozenset({"/metrics", "/health"})
#: Protected Resource Metadata (RFC 9728; reasonkit/server/http/oauth.py): public, like a probe.
METADATA_PATH = "/.well-known/oauth-protected-resource"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SHORT_TOKEN = 16
#: `name:token`: a token's principal name (letters, digits, `_.@-`, at most 64 characters).
NAMED_TOKEN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.@-]{0,63}):(.+)")

# JSON-RPC error codes of the rejections (implementation-defined server errors, -32000..-32099,
# and Invalid Request for requests the server refuses to read).
ERROR_CODES = {
    "unauthorized": -32001,
    "invalid_token": -32001,
    "insufficient_scope": -32001,
    "issuer_unavailable": -32000,
    "rate_limited": -32029,
    "invalid_host": -32600,
    "invalid_origin": -32600,
    "too_large": -32600,
}


# ----------------------------------------------------------------------------- hosts
def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES or h == "localhost.localdomain":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, str | None]:
    """`Host` header value -> (lower-case host without brackets, port or None)."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return v, None
        host, rest = v[1:end], v[end + 1 :]
        return host, rest[1:] if rest.startswith(":") and rest[1:] else None
    if v.count(":") == 1:
        host, port = v.split(":")
        return host, port or None
    return v, None  # a bare name, or an unbracketed IPv6 address (invalid in Host, compared as is)


def _host_matches(host: str, port: str | None, pattern: str) -> bool:
    p_host, p_port = split_host(pattern)
    if p_host.startswith("*."):
        ok = host.endswith(p_host[1:]) and len(host) > len(p_host) - 1
    else:
        ok = host == p_host
    if not ok:
        return False
    return p_port in (None, "*") or p_port == port


def _origin_matches(origin: str, pattern: str) -> bool:
    o, p = origin.strip().rstrip("/").lower(), pattern.strip().rstrip("/").lower()
    if p == "*" or o == p:
        return True
    if p.endswith(":*"):  # scheme://host:* = any port (or none)
        base = p[:-2]
        return o == base or (o.startswith(base + ":") and o[len(base) + 1 :].isdigit())
    return False


LOCAL_ORIGINS = (
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
)


# ----------------------------------------------------------------------------- tokens
def split_token(entry: str) -> tuple[str | None, str]:
    """A configured token entry -> (its principal name, or None for an unnamed token; the token).
    `alice:<token>` names the token `alice`; a token that itself contains `:` must be named."""
    named = NAMED_TOKEN.fullmatch(entry)
    return (named.group(1), named.group(2)) if named else (None, entry)


def load_tokens(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Token entries from `REASONKIT_AUTH_TOKENS` (comma-separated) and `[security] auth_tokens_file`
    (one per line, `#` comments); an entry is a token or `name:token` (`split_token`). Raises
    SecurityError when the file cannot be read."""
    env = os.environ if environ is None else environ
    tokens = [t.strip() for t in env.get(TOKENS_ENV, "").split(",") if t.strip()]
    path = settings.security.auth_tokens_file
    if path:
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
            mode = p.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SecurityError(f"[security] auth_tokens_file = {path}: cannot be read: {why}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "the token file {} is readable by other users (mode {:o}); chmod 600 it",
                p,
                stat.S_IMODE(mode),
            )
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                tokens.append(line)
    bad = [i for i, t in enumerate(tokens) if any(c.isspace() or not c.isprintable() for c in t)]
    if bad:
        raise SecurityError(
            f"bearer token #{bad[0] + 1} contains whitespace or control characters; "
            "tokens are single words (e.g. `openssl rand -hex 32`)"
        )
    if any(len(split_token(t)[1]) < SHORT_TOKEN for t in tokens):
        logger.warning(
            "a bearer token is shorter than {} characters; "
            "use long random tokens (e.g. `openssl rand -hex 32`)",
            SHORT_TOKEN,
        )
    return list(dict.fromkeys(tokens))


def secret_values(settings: Settings, tokens: list[str]) -> list[str | None]:
    """Every configured secret, for log redaction: tokens, API keys, the Redis and database URLs and
    their passwords."""
    out: list[str | None] = [split_token(t)[1] for t in tokens]
    out += [p.api_key.get_secret_value() if p.api_key else None for p in settings.llm.providers.values()]
    database = getattr(settings.storage, "url", None)  # the PostgreSQL run store (reasonkit.store.factory)
    for secret in (settings.database.redis.url, database):
        if not secret:
            continue
        url = secret.get_secret_value()
        out.append(url)
        try:
            out.append(urlsplit(url).password)
        except ValueError:
            pass
    return out


# ----------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class SecurityPolicy:
    """What the middleware enforces; built from settings (+ env tokens) and swapped on SIGHUP."""

    tokens: tuple[bytes, ...] = ()
    names: tuple[str, ...] = ()  # each token's principal name (same order)
    admins: frozenset[str] = frozenset()  # [server] admin_principals
    loopback: bool = True
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    public_metrics: bool = False
    max_body: int = 4 * 1024 * 1024
    rate_limit: int | None = None
    # OAuth access tokens of `[server.oauth] issuer` (oauth_tokens.py); it keeps the issuer's keys,
    # so a reload with the same settings hands it on (reasonkit/server/mcp/reload.py).
    oauth: TokenVerifier | None = field(default=None, compare=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, host: str, environ: Mapping[str, str] | None = None
    ) -> SecurityPolicy:
        s = settings.security
        tokens = load_tokens(settings, environ)
        from reasonkit.observability.logging import add_secrets

        add_secrets(secret_values(settings, tokens))
        pairs = [split_token(t) for t in tokens]
        oauth = None
        if settings.server.oauth.enabled:  # PyJWT and cryptography load only for OAuth
            from reasonkit.server.http.oauth_tokens import TokenVerifier

            oauth = TokenVerifier(settings.server.oauth)
        return cls(
            tokens=tuple(t.encode() for _, t in pairs),
            names=tuple(name or token_name(t.encode()) for name, t in pairs),
            admins=frozenset(settings.server.admin_principals),
            loopback=is_loopback(host),
            allowed_hosts=tuple(s.allowed_hosts),
            allowed_origins=tuple(s.allowed_origins),
            public_metrics=s.public_metrics,
            max_body=max(1, int(s.max_request_size_mb * 1024 * 1024)),
            rate_limit=s.rate_limit_per_minute,
            oauth=oauth,
        )

    @property
    def auth(self) -> bool:
        """Whether requests must authenticate: static tokens or OAuth access tokens."""
        return bool(self.tokens) or self.oauth is not None

    def check_bind(self, host: str, port: int, settings: Settings) -> None:
        """Refuse a non-loopback bind without tokens unless explicitly allowed."""
        if self.loopback or self.auth:
            return
        if settings.security.allow_unauthenticated_remote:
            logger.warning(
                "serving HTTP on {}:{} WITHOUT authentication ([security] allow_unauthenticated_remote): "
                "anyone who reaches this port can run tools",
                host,
                port,
            )
            return
        raise SecurityError(
            f"refusing to serve HTTP on {host or 'all interfaces'}:{port} (not a loopback address) "
            "without authentication. "
            f"Either set bearer tokens ({TOKENS_ENV}=token1,token2 "
            'or [security] auth_tokens_file = "/path/to/tokens"), '
            "or allow unauthenticated remote access explicitly "
            "([security] allow_unauthenticated_remote = true or "
            "REASONKIT_ALLOW_UNAUTHENTICATED=true), e.g. behind a proxy that authenticates; "
            "or bind 127.0.0.1"
        )

    def startup_notes(self, host: str) -> None:
        if not self.loopback and not self.allowed_hosts:
            logger.warning(
                "HTTP on {}: the Host header is not checked ([security] allowed_hosts is empty); "
                "set it to the names clients use "
                "(e.g. reasonkit.example.com) for DNS-rebinding protection",
                host,
            )
        if self.auth:
            logger.info(
                "bearer-token authentication on ({} token(s)); /metrics and /health on this port: {}",
                len(self.tokens),
                "open" if self.public_metrics else "token required",
            )
        if self.oauth is not None:
            logger.info(
                "OAuth access tokens of {} accepted for the resource {} (metadata at {})",
                self.oauth.issuer,
                self.oauth.audience,
                METADATA_PATH,
            )

    # -- checks
    def host_ok(self, value: str | None) -> bool:
        if self.loopback:
            if not value:
                return False
            host, port = split_host(value)
            if is_loopback(host):  # localhost, 127.0.0.0/8, ::1
                return True
            return any(_host_matches(host, port, p) for p in self.allowed_hosts)
        if not self.allowed_hosts:
            return True
        if not value:
            return False
        host, port = split_host(value)
        # An IP-address Host cannot be the result of DNS rebinding (that needs the attacker's name),
        # and it is what probes, scrapers and load balancers send.
        return _is_ip(host) or any(_host_matches(host, port, p) for p in self.allowed_hosts)

    def origin_ok(self, value: str | None) -> bool:
        if not value:
            return True  # non-browser clients send no Origin
        if self.loopback and any(_origin_matches(value, p) for p in LOCAL_ORIGINS):
            return True
        return any(_origin_matches(value, p) for p in self.allowed_origins)

    def token_id(self, presented: str | None) -> str | None:
        """The principal name of the matching token, or None. Compares against every token in
        constant time per token, whether or not an earlier one matched."""
        if presented is None:
            return None
        given = presented.encode()
        hit: str | None = None
        for t, name in zip(self.tokens, self.names, strict=True):
            if hmac.compare_digest(given, t):
                hit = name
        return hit

    def principal(self, presented: str | None) -> Principal | None:
        """Who presents `presented`: the matching token's principal, `local` when no tokens are
        configured, None for a wrong or missing token."""
        if not self.auth:
            return LOCAL
        name = self.token_id(presented)
        return None if name is None else Principal(name, admin=name in self.admins)


def open_path(path: str, side: bool, policy: SecurityPolicy) -> bool:
    """Whether `path` is served without a token: the resource metadata, and `/metrics` and `/health`
    on the side port or with `[security] public_metrics`."""
    if path == METADATA_PATH or path.startswith(METADATA_PATH + "/"):
        return True
    return path in OBSERVABILITY_PATHS and (side or policy.public_metrics)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip()
    return token or None
