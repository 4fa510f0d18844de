"""A real OpenID provider for the OAuth tests: `oidc-provider` (npm, OpenID Certified) under the Node 22
of tools/node, started by oidc_provider.mjs on a free loopback port. Tokens are minted through its
token endpoint (client credentials grant); the tests hold its signing key too, so they can sign the
tokens it would never mint (expired, another issuer, ...).

Node and oidc-provider are installed by .ci/run:

    cd tools/node && npm i --no-audit --no-fund oidc-provider@9
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.programs import skip_or_fail

ROOT = Path(__file__).resolve().parents[3]  # tests/server/<room>/this file
MODULES = ROOT / "tools" / "node" / "node_modules"
NODE = MODULES / ".bin" / "node"
LAUNCHER = Path(__file__).with_name("oidc_provider.mjs")
INSTALL = "cd tools/node && npm i --no-audit --no-fund node@22 oidc-provider@9"
AUDIENCE = "http://127.0.0.1:9100/mcp"  # the in-process test server's /mcp (tests/server/helpers.py)
SCOPE = "mcp:tools"
ADMIN = "reasonkit:admin"
SECRET = "s3cret-" + "x" * 40
# client id (= the token's sub) -> the scopes it may have
CLIENTS = {"alice": SCOPE, "bob": SCOPE, "root": f"{SCOPE} {ADMIN}", "carol": "reasonkit:other"}


def missing() -> str | None:
    """Why the provider cannot run here, or None."""
    if not NODE.exists():
        return f"Node >= 22 is not installed in {MODULES.parent}"
    if not (MODULES / "oidc-provider" / "lib" / "index.js").exists():
        return f"oidc-provider is not installed in {MODULES.parent}"
    return None


def require() -> None:
    """Skip (fail under CI) without Node and oidc-provider (tests/programs.py)."""
    why = missing()
    if why is not None:
        skip_or_fail(f"NOT TESTED: OAuth against a real OpenID provider: {why}; install with: {INSTALL}")


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    """An RSA signing key and its private JWK (`kid`, RS256)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    return key, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class Provider:
    """One running oidc-provider; `issuer` is its URL, `key` its signing key (`kid`). `port` 0 picks a
    free one; `retired` are further keys it publishes but no longer signs with (a key rotation)."""

    workdir: Path
    kid: str = "k1"
    port: int = 0
    retired: list[dict[str, Any]] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(init=False)
    jwk: dict[str, Any] = field(init=False)
    issuer: str = field(init=False)
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.key, self.jwk = new_key(self.kid)
        config = {
            "port": self.port,
            "jwks": {"keys": [self.jwk, *self.retired]},
            "audience": AUDIENCE,
            "scopes": [SCOPE, ADMIN, "reasonkit:other"],
            "clients": [
                {"client_id": cid, "client_secret": SECRET, "scope": scope} for cid, scope in CLIENTS.items()
            ],
        }
        path = self.workdir / f"oidc-{self.kid}.json"
        path.write_text(json.dumps(config))
        self.log = self.workdir / f"oidc-{self.kid}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(NODE), str(LAUNCHER), str(path), str(MODULES)], stdout=subprocess.PIPE, stderr=log
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"oidc-provider did not start: {self.log.read_text()[-2000:]}"
        self.issuer = json.loads(line)["issuer"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def mint(self, client: str, *, scope: str = SCOPE, resource: str = AUDIENCE) -> str:
        """An access token from the token endpoint (client credentials grant, RFC 8707 resource)."""
        r = httpx.post(
            f"{self.issuer}/token",
            auth=(client, SECRET),
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def jwks_hits(self) -> int:
        """How often the JWK set has been fetched (the launcher counts)."""
        hits: int = httpx.get(f"{self.issuer}/test/jwks-hits", timeout=10).json()["hits"]
        return hits

    def sign(self, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        """A token signed with `key` (default: the provider's own) as if this provider minted it."""
        return sign_token(key or self.key, self.issuer, kid or self.kid, **claims)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def sign_token(key: rsa.RSAPrivateKey, issuer: str, kid: str, **claims: Any) -> str:
    """A token signed with `key`, with the claims a minted one has, changed by `claims` (a value None
    drops the claim)."""
    now = int(time.time())
    body = {"iss": issuer, "aud": AUDIENCE, "sub": "alice", "scope": SCOPE, "iat": now}
    body.update({"exp": now + 300, **claims})
    body = {k: v for k, v in body.items() if v is not None}
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(body, pem, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A JWT written by hand: `alg: none` (no signature), or HS256 with `secret` as the HMAC key
    (the public key confusion attack; PyJWT refuses to write either)."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    if secret is None:
        return head + "."
    return head + "." + b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())


@contextmanager
def issuer_serving(documents: Callable[[str], dict[str, Any]]) -> Iterator[str]:
    """A plain issuer on a loopback port answering GET path with `documents(issuer)[path]` (JSON),
    404 otherwise: for key sets no real provider would publish."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents(issuer).get(self.path)
            data = json.dumps(body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
