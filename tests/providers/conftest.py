"""Helpers for the resilience and cache tests: settings pointing at the fake LLM server, a provider
that is always closed, a slow-drip HTTP server, a closed port, and a real `redis-server`."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from loguru import logger

from reasonkit.config import Settings, load_settings
from reasonkit.observability.metrics import Metrics
from reasonkit.providers import LLMRequest, Provider
from reasonkit.providers.breaker import BreakerProvider, CircuitBreaker
from reasonkit.providers.fallback import FallbackProvider
from reasonkit.providers.negotiation import NEGOTIATION
from reasonkit.providers.stack import build_provider
from reasonkit.providers.wrapper import WrapperProvider
from tests.programs import require_program

SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
}
OK = {"answer": "ok", "confidence": 0.8}
ANTHROPIC_KEY = "sk-ant-test-secret-key-0001"
OTHER = {"anthropic": "openai", "openai": "anthropic"}


def base_url(fake: Any, api: str) -> str:
    return fake.anthropic_base_url if api == "anthropic" else fake.openai_base_url


def make_settings(api: str, url: str, fallback: tuple[str, str] | None = None, **env: str) -> Settings:
    """Settings with `api` as the default provider at `url` (and optionally a fallback provider
    `(name, url)`), fast retry backoff, and anything in `env` (environment variable names)."""
    environ = {"LLM_DEFAULT_PROVIDER": api, **env}
    for name, u in [(api, url), *([fallback] if fallback else [])]:
        if name == "anthropic":
            environ.update(ANTHROPIC_BASE_URL=u, ANTHROPIC_API_KEY=ANTHROPIC_KEY)
        else:
            environ["OPENAI_BASE_URL"] = u
    if fallback:
        environ["LLM_FALLBACK_PROVIDER"] = fallback[0]
    s = load_settings(environ=environ)
    for ps in s.llm.providers.values():
        ps.retry_base_delay_secs = 0.01
    return s


def request(text: str = "hi", temperature: float | None = 0.0, **kw: Any) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "user", "content": text}], schema=SCHEMA, temperature=temperature, **kw
    )


@asynccontextmanager
async def open_provider(
    settings: Settings, metrics: Metrics | None = None
) -> AsyncIterator[FallbackProvider]:
    p = build_provider(settings, metrics=metrics or Metrics())
    assert isinstance(p, FallbackProvider)
    try:
        yield p
    finally:
        await p.aclose()


def breaker_of(chain: FallbackProvider, index: int = 0) -> CircuitBreaker | None:
    """The circuit breaker of provider `index` of the chain (None without one)."""
    p: Provider = chain.providers[index]
    while isinstance(p, WrapperProvider):
        if isinstance(p, BreakerProvider):
            return p.breaker
        p = p.inner
    return None


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A metric's current value (0 when the labelled series does not exist yet)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _fresh_negotiation() -> Iterator[None]:
    """Every test starts with an empty output-mode table (it is process-wide)."""
    NEGOTIATION.clear()
    yield
    NEGOTIATION.clear()


@pytest.fixture
def no_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process `local` provider counts as not installed (only the availability check)."""
    import reasonkit.providers as providers

    monkeypatch.setattr(providers, "kind_available", lambda kind, settings=None: False)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Loguru messages at INFO and above, as "LEVEL|message" strings."""
    lines: list[str] = []
    handler = logger.add(
        lambda m: lines.append(str(m).rstrip("\n")), level="INFO", format="{level}|{message}"
    )
    yield lines
    logger.remove(handler)


# --------------------------------------------------------------------------------------------------
# A server that answers 200 with a Content-Length and then trickles the body one byte at a time,
# so every single read is quick and only a whole-reply deadline can catch it.
# --------------------------------------------------------------------------------------------------
class DripServer:
    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.connections = 0
        self.port = 0

    async def _handle(self, stream: Any) -> None:
        self.connections += 1
        try:
            async with stream:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += await stream.receive()
                head, _, body = buf.partition(b"\r\n\r\n")
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                need = int(m.group(1)) if m else 0
                while len(body) < need:
                    body += await stream.receive()
                await stream.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
                )
                for _ in range(2000):
                    await stream.send(b" ")
                    await anyio.sleep(self.interval)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ConnectionError):
            pass


@asynccontextmanager
async def drip_server(interval: float = 0.05) -> AsyncIterator[DripServer]:
    server = DripServer(interval)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
    await listener.aclose()


# --------------------------------------------------------------------------------------------------
# A real redis-server on a free loopback port, in a temporary directory, with a password.
# --------------------------------------------------------------------------------------------------
REDIS_PASSWORD = "hunter2-redis-Pw-77"


class RedisServer:
    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.port = closed_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--requirepass",
                REDIS_PASSWORD,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode}")
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING within 10s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def command(self, *args: str) -> bytes:
        """One inline command after AUTH; returns the reply to the command."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(f"AUTH {REDIS_PASSWORD}\r\n{' '.join(args)}\r\n".encode())
            data = b""
            while data.count(b"\r\n") < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[1] if b"\r\n" in data else data

    def dbsize(self) -> int:
        return int(self.command("DBSIZE").strip().lstrip(b":").split(b"\r\n")[0])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    # the Redis cache tests need a real server: skipped when missing, failed under CI
    binary = require_program("redis-server", "apt-get install -y redis-server")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
