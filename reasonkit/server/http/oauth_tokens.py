"""Verifying OAuth access tokens (JWTs, RFC 9068) for the gate's OAuth rule (oauth.py).

A token is accepted when its signature verifies with a key of the issuer's JWK set, its algorithm is
an asymmetric one we allow (never `none`, never an HMAC: a public key is no secret), `iss` is the
configured issuer, `aud` names this server's resource URL (RFC 8707), `exp` and `nbf` hold within
`LEEWAY` seconds, and it carries `sub` and every required scope (`accepted_audiences` may add `aud`
values for issuers that name this server otherwise). PyJWT (with cryptography) checks
the signature and the claims and parses the JWK set; fetching the issuer's metadata and keys is
ours, because PyJWT's `PyJWKClient` blocks on urllib and refetches the set for every unknown key id:
here the fetch is async with a deadline, one at a time, and an unknown `kid` refetches at most once
per `min_refresh_secs`, so random key ids cannot make a refetch storm.

An issuer that cannot be reached leaves the keys already fetched in use; with none at all the
answer is 503 (`IssuerUnavailable`), with a log line per attempt (at most one per
`RETRY_AFTER_FAILURE` seconds), never a hang or a 500. No token text is ever logged or echoed:
refusals carry our own short descriptions.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import jwt
from loguru import logger

from reasonkit.config.oauth import OAuthSettings, check_url
from reasonkit.errors import ConfigError, IssuerUnavailable
from reasonkit.principal import Principal, oauth_name

ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat
FETCH_TIMEOUT = 5.0  # one metadata or key-set fetch, connect to last byte
REFRESH_DEADLINE = 10.0  # discovery and key set together
MIN_REFRESH = 30.0  # an unknown kid refetches the key set at most this often
KEYS_MAX_AGE = 3600.0  # key sets older than this are refetched on the next request
RETRY_AFTER_FAILURE = 5.0  # after a failed fetch, none for this long (requests get 503 at once)
MAX_DOCUMENT = 1 << 20  # bytes of a metadata document or key set
MAX_TOKEN = 16 << 10  # characters of an access token

# PyJWT's errors -> what the 401 says (never the library's text, which may quote the token).
WHY = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is not for this resource (aud)"),
    (jwt.InvalidIssuerError, "the token is from another issuer (iss)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (exp, iss, aud, sub)"),
    (jwt.InvalidAlgorithmError, "the token's algorithm does not fit its key"),
    (jwt.InvalidKeyError, "the token's algorithm does not fit its key"),
)


@dataclass(frozen=True)
class Key:
    """One signing key of the issuer, with the algorithm its JWK declares (None: any of its type)."""

    jwk: jwt.PyJWK
    alg: str | None


@dataclass(frozen=True)
class Refusal:
    """Why a token is not accepted: 401 `invalid_token`, 403 `insufficient_scope`, or 503 when the
    issuer's keys cannot be fetched (`error` is then `temporarily_unavailable`)."""

    status: int
    error: str
    description: str
    retry_after: int = 0


def discovery_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be, in the MCP authorization spec's order: RFC 8414's
    `oauth-authorization-server` and OpenID Connect's `openid-configuration`, inserted before the
    issuer's path, then OpenID Connect's appended to it."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")

    def at(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, p, "", ""))

    urls = [
        at(f"/.well-known/oauth-authorization-server{path}"),
        at(f"/.well-known/openid-configuration{path}"),
    ]
    if path:
        urls.append(at(f"{path}/.well-known/openid-configuration"))
    return urls


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The scopes of a token: `scope` (RFC 9068: space-separated), or `scp` (Entra ID: a string or a
    list)."""
    found: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found)


class TokenVerifier:
    """One issuer's tokens for one resource. Keeps the issuer's keys between requests (a SIGHUP
    reload with the same `[server.oauth]` keeps the verifier too)."""

    def __init__(
        self,
        settings: OAuthSettings,
        *,
        min_refresh_secs: float = MIN_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ):
        if settings.issuer is None or settings.audience is None:
            raise ConfigError("OAuth needs [server.oauth] issuer and audience")
        self.settings = settings
        self.issuer: str = settings.issuer
        self.audience: str = settings.audience
        self.min_refresh = min_refresh_secs
        self.clock = clock
        self._keys: dict[str | None, Key] = {}
        self._jwks_uri: str | None = None
        self._fetched = -math.inf  # when the key set was last fetched
        self._tried = -math.inf  # when a fetch was last attempted
        self._failed = False  # whether that attempt failed
        self._lock: anyio.Lock | None = None  # made on first use, inside the serving event loop

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return tuple(self.settings.required_scopes)

    async def verify(self, token: str, admins: Collection[str] = ()) -> Principal | Refusal:
        """The principal of a valid token (an admin with the admin scope or a name in `admins`), or
        why not."""
        if len(token) > MAX_TOKEN or token.count(".") != 2:
            return Refusal(401, "invalid_token", "the token is not a JWT access token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Refusal(401, "invalid_token", "the token is not a JWT access token")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            return Refusal(401, "invalid_token", "the token's algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            return Refusal(401, "invalid_token", "the token's key id is not a string")
        try:
            key = await self._key(kid)
        except IssuerUnavailable as exc:
            return Refusal(503, "temporarily_unavailable", str(exc), math.ceil(RETRY_AFTER_FAILURE))
        if key is None:
            return Refusal(401, "invalid_token", "the token's signing key is not one of the issuer's")
        claims = self._claims(token, key, alg)
        if isinstance(claims, Refusal):
            return claims
        scopes = token_scopes(claims)
        missing = [s for s in self.required_scopes if s not in scopes]
        if missing:
            return Refusal(403, "insufficient_scope", f"the token lacks the scope {' '.join(missing)}")
        name = oauth_name(self.issuer, claims["sub"])
        return Principal(name, admin=self.settings.admin_scope in scopes or name in admins, source="oauth")

    def _claims(self, token: str, key: Key, alg: str) -> dict[str, Any] | Refusal:
        if key.alg is not None and key.alg != alg:
            return Refusal(401, "invalid_token", "the token's algorithm does not fit its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=[self.audience, *self.settings.accepted_audiences],
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            why = next((text for kind, text in WHY if isinstance(exc, kind)), "the token is malformed")
            return Refusal(401, "invalid_token", why)
        except Exception as exc:  # noqa: BLE001 - whatever a token holds, its refusal is a 401, never a 500
            logger.debug("OAuth: a token's check raised {}", type(exc).__name__)
            return Refusal(401, "invalid_token", "the token is malformed")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            return Refusal(401, "invalid_token", "the token's subject (sub) is empty")
        return claims

    # ------------------------------------------------------------------ keys
    async def _key(self, kid: str | None) -> Key | None:
        now = self.clock()
        stale = now - self._fetched >= KEYS_MAX_AGE
        unknown = self._pick(kid) is None and now - self._tried >= self.min_refresh
        if stale or unknown:
            await self._refresh()
        return self._pick(kid)

    def _pick(self, kid: str | None) -> Key | None:
        if kid is None:  # a token without a key id: only where the issuer has exactly one key
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        """Fetch the key set (and first the metadata), one fetch at a time; raises
        IssuerUnavailable only when there are no keys to go on with."""
        if self._lock is None:
            self._lock = anyio.Lock()
        tried_before = self._tried
        async with self._lock:
            if self._tried != tried_before:
                pass  # another request fetched while this one waited: use what it got
            elif self._failed and self.clock() - self._tried < RETRY_AFTER_FAILURE:
                pass
            else:
                self._tried = self.clock()
                try:
                    self._keys = await self._fetch_keys()
                    self._fetched, self._failed = self._tried, False
                except IssuerUnavailable as exc:
                    self._failed, self._jwks_uri = True, None  # discover again next time
                    kept = f"; the {len(self._keys)} key(s) fetched before stay in use" if self._keys else ""
                    logger.error("OAuth: {}{}", exc, kept)
            if not self._keys and self._failed:
                raise IssuerUnavailable(
                    f"the OAuth issuer {self.issuer} cannot be reached for its signing keys; retry shortly"
                )

    async def _fetch_keys(self) -> dict[str | None, Key]:
        try:
            with anyio.fail_after(REFRESH_DEADLINE):
                async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http:
                    if self._jwks_uri is None:
                        self._jwks_uri = await self._discover(http)
                    document = await _get_json(http, self._jwks_uri, "key set")
        except TimeoutError:
            raise IssuerUnavailable(
                f"the OAuth issuer {self.issuer} did not give its keys within {REFRESH_DEADLINE:g} s"
            ) from None
        entries = document.get("keys")
        keys: dict[str | None, Key] = {}
        for entry in entries if isinstance(entries, list) else []:
            if (
                not isinstance(entry, dict)
                or entry.get("use", "sig") != "sig"
                or "alg" in entry
                and not isinstance(entry["alg"], str)
            ):
                continue
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key type or curve we do not use, or a malformed entry
            declared = entry.get("alg")
            if key.algorithm_name in ALGORITHMS and (declared is None or declared in ALGORITHMS):
                kid = entry.get("kid")
                keys[kid if isinstance(kid, str) else None] = Key(key, declared)
        if not keys:
            raise IssuerUnavailable(f"the key set at {self._jwks_uri} holds no signing key we can use")
        return keys

    async def _discover(self, http: httpx.AsyncClient) -> str:
        """The issuer's `jwks_uri`, from the first metadata document that names this issuer."""
        problems = []
        for url in discovery_urls(self.issuer):
            try:
                meta = await _get_json(http, url, "metadata")
            except IssuerUnavailable as exc:
                problems.append(str(exc))
                continue
            if meta.get("issuer") != self.issuer:
                problems.append(f"{url} names another issuer")
                continue
            uri = meta.get("jwks_uri")
            try:
                return check_url(uri if isinstance(uri, str) else "", "its jwks_uri")
            except ValueError as exc:
                problems.append(f"{url}: {exc}")
        raise IssuerUnavailable(
            f"no usable metadata for the OAuth issuer {self.issuer}: " + "; ".join(problems)
        )


async def _get_json(http: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
    """A JSON object from `url` within FETCH_TIMEOUT and MAX_DOCUMENT, or IssuerUnavailable."""
    try:
        with anyio.fail_after(FETCH_TIMEOUT):
            async with http.stream("GET", url, headers={"accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise IssuerUnavailable(f"{what} {url}: HTTP {resp.status_code}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise IssuerUnavailable(f"{what} {url}: larger than {MAX_DOCUMENT} bytes")
    except TimeoutError:
        raise IssuerUnavailable(f"{what} {url}: no answer within {FETCH_TIMEOUT:g} s") from None
    except httpx.HTTPError as exc:
        raise IssuerUnavailable(f"{what} {url}: {type(exc).__name__}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise IssuerUnavailable(f"{what} {url}: not JSON") from None
    if not isinstance(document, dict):
        raise IssuerUnavailable(f"{what} {url}: not a JSON object")
    return document
