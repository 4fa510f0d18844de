"""Access tokens made up by Hypothesis (issue 23, sections 2 and 4): any header and any claims, of any
JSON type, signed with the issuer's own key, with another, with an HMAC or not at all. The verifier
answers a principal or a refusal (401 or 403), never raises; only a token with the right issuer,
audience, subject, times and scope, signed with the issuer's key, passes. No IdP needed: a plain
issuer on a loopback port serves the key set (tests/server/http/oidc.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonkit.config.oauth import OAuthSettings
from reasonkit.principal import Principal
from reasonkit.server.http.oauth_tokens import Refusal, TokenVerifier
from tests.server.http import oidc

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
KEY, PRIVATE = oidc.new_key("k1")
OTHER, _ = oidc.new_key("k2")
PUBLIC = {k: v for k, v in PRIVATE.items() if k in ("kty", "n", "e", "kid", "use", "alg")}


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with oidc.issuer_serving(
        lambda iss: {
            "/.well-known/oauth-authorization-server": {"issuer": iss, "jwks_uri": f"{iss}/jwks"},
            "/jwks": {"keys": [PUBLIC]},
        }
    ) as url:
        yield url


@pytest.fixture
def verify(issuer: str) -> Iterator[tuple[BlockingPortal, TokenVerifier]]:
    settings_ = OAuthSettings(issuer=issuer, audience=oidc.AUDIENCE, required_scopes=[oidc.SCOPE])
    verifier = TokenVerifier(settings_)
    with start_blocking_portal() as portal:
        yield portal, verifier


@dataclass(frozen=True)
class Case:
    token: str
    how: str
    header: dict[str, Any]
    claims: dict[str, Any]
    untouched: bool  # the claims and header of a minted token, as they were


def scopes(claims: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        found |= set(value.split()) if isinstance(value, str) else set()
        found |= {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
    return found


@st.composite
def cases(draw: st.DrawFn, issuer: str) -> Case:
    now = int(time.time())
    good: dict[str, Any] = {"iss": issuer, "aud": oidc.AUDIENCE, "sub": "alice", "scope": oidc.SCOPE}
    good.update(exp=now + 300, iat=now)
    claims = dict(good)
    for name in draw(st.lists(st.sampled_from([*good, "nbf", "scp", "x"]), max_size=3, unique=True)):
        claims[name] = draw(JSON)
    header: dict[str, Any] = {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}
    names = ["alg", "kid", "typ", "crit", "jku"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        header[name] = draw(st.sampled_from(["none", "HS256", "RS512", "ES256", "k2"]) | JSON)
    how = draw(st.sampled_from(["own key", "own key", "other key", "hmac with the public key", "unsigned"]))
    untouched = claims == good and header == {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}
    if how == "unsigned" or not isinstance(header.get("alg"), str):
        return Case(oidc.unsigned(header, claims), "unsigned", header, claims, untouched)
    if how == "hmac with the public key":
        pem = KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Case(oidc.unsigned({**header, "alg": "HS256"}, claims, pem), how, header, claims, untouched)
    header["alg"] = "RS256"  # signed below with an RSA key, whatever else the header says
    head = oidc.b64(json.dumps(header).encode()) + "." + oidc.b64(json.dumps(claims).encode())
    key = KEY if how == "own key" else OTHER
    signature = key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    return Case(head + "." + oidc.b64(signature), how, header, claims, untouched)


def test_made_up_tokens_are_refused_never_raised(issuer: str, verify) -> None:
    portal, verifier = verify

    @FUZZ
    @given(cases(issuer))
    def check(case: Case) -> None:
        outcome = portal.call(verifier.verify, case.token)
        if case.untouched and case.how == "own key":
            assert isinstance(outcome, Principal) and outcome.name == f"{issuer}#alice", outcome
        if isinstance(outcome, Principal):  # only with everything that matters in place
            c = case.claims
            aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
            assert case.how == "own key" and case.header.get("kid") == "k1", case
            assert c["iss"] == issuer and oidc.AUDIENCE in aud and oidc.SCOPE in scopes(c), case
            assert isinstance(c["sub"], str) and c["sub"] and outcome.name == f"{issuer}#{c['sub']}"
        else:
            assert isinstance(outcome, Refusal) and outcome.status in (401, 403), outcome

    check()
