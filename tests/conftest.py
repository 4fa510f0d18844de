"""Shared pytest configuration for ReasonKit.

Other engineers may append further fixtures below; keep the network guard and the env scrub at the top.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

try:  # `python -m pytest` from the repo root puts the root on sys.path ...
    from tests.fakes.fake_llm import FakeLLM
except ImportError:  # ... plain `pytest` only has tests/ on sys.path (rootdir-relative conftest import)
    from fakes.fake_llm import FakeLLM  # type: ignore[no-redef]  # the same class by its other path

# --------------------------------------------------------------------------------------------------
# (2) Environment scrub, done at import time (i.e. before any test module, fixture or SDK client is
# created), so that a developer's real keys/endpoints/config can never be picked up by code under test:
# a leaked key could make a test hit (and bill) a real provider, and a leaked base URL / default
# provider / config path would make results depend on the machine running the tests.
# Tests that need one of these set it explicitly with `monkeypatch.setenv`.
# --------------------------------------------------------------------------------------------------
_SCRUBBED_ENV = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "LLM_DEFAULT_PROVIDER",
    "LLM_DEFAULT_MODEL",
    "REASONKIT_CONFIG",
    "LOCAL_MODEL_PATH",
    "LOCAL_N_CTX",
    "LOCAL_N_THREADS",
    "LOCAL_N_GPU_LAYERS",
    "LOCAL_MODEL_AUTO",
    # also read implicitly by the SDKs themselves:
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_CUSTOM_HEADERS",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)
for _name in _SCRUBBED_ENV:
    os.environ.pop(_name, None)


# --------------------------------------------------------------------------------------------------
# (1) Network guard: only loopback connections are allowed during the test session.
# Name resolution (socket.getaddrinfo, used by socket.create_connection and asyncio/anyio) and
# socket.connect/connect_ex (catches IP literals, which skip resolution) are both checked, so
# api.anthropic.com, api.openai.com, openrouter.ai and everything else non-local raise
# RuntimeError("network blocked in tests: <host>").
# --------------------------------------------------------------------------------------------------
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _host_str(host: Any) -> str:
    if isinstance(host, bytes | bytearray):  # anyio/asyncio pass IDNA-encoded bytes
        return bytes(host).decode("ascii", "replace")
    return str(host)


def _is_loopback(host: Any) -> bool:
    if host is None:  # getaddrinfo(None, port): passive/bind lookup, resolves locally
        return True
    host = _host_str(host).strip("[]").lower()
    if host == "" or host in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        raise RuntimeError(f"network blocked in tests: {_host_str(host)}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        if not _is_loopback(address[0]):
            raise RuntimeError(f"network blocked in tests: {_host_str(address[0])}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(scope="session", autouse=True)
def _block_real_network() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
        mp.setattr(socket.socket, "connect", _guarded_connect)
        mp.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
        yield


# --------------------------------------------------------------------------------------------------
# (3) Fake LLM server (Anthropic + OpenAI wire formats) — see tests/fakes/fake_llm.py
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


# --------------------------------------------------------------------------------------------------
# (4) anyio: run `@pytest.mark.anyio` tests on asyncio only
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------------------------------
# (5) System programs (redis-server, promtool, shellcheck, systemd-analyze, logrotate, Node 22 tools):
# tests call `tests.programs.require_program(name, install_hint)`: skipped with a reason naming what
# to install when missing, FAILED when `CI` is set (as `.ci/run` sets it). See tests/programs.py.
# --------------------------------------------------------------------------------------------------
