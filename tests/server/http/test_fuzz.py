"""Hypothesis against the whole HTTP/JSON-RPC surface of the in-process app (issue 23, section 4):
arguments of every tool (right names, any JSON values), made-up and real methods, odd headers, deep
nesting, other encodings and raw bytes. Whatever comes in: no 500, no traceback in the logs, and
/metrics stays small with only known label values. Deterministic (derandomized, no example database)
and modest (a few hundred requests, well under a minute)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger

from reasonkit.observability.metrics import MCP_METHODS, OTHER
from reasonkit.server.http.apps import build_http_app
from tests.server.conftest import routed
from tests.server.helpers import LEGACY, asgi_client

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/xml"]
ACCEPTS = ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", ""]
VERSIONS = [LEGACY, "2025-03-26", "2026-07-28", "1999-01-01", "garbage"]
ENCODINGS = ["utf-8", "utf-16", "utf-32", "latin-1"]


class Surface:
    """The app, its client running in a portal's event loop, and what the logs said."""

    def __init__(self, portal: Any, http: Any, tools: dict[str, list[str]]):
        self.portal, self.http, self.tools = portal, http, tools
        self.statuses: list[int] = []
        self.tracebacks: list[str] = []

    def post(self, content: bytes, headers: dict[str, str]) -> int:
        status = self.portal.call(self._post, content, headers)
        self.statuses.append(status)
        return status

    async def _post(self, content: bytes, headers: dict[str, str]) -> int:
        return (await self.http.post("/mcp", content=content, headers=headers)).status_code

    def get(self, path: str) -> str:
        async def fetch() -> str:
            return (await self.http.get(path)).text

        return self.portal.call(fetch)


class _Tracebacks(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.into.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def surface(make_server, fake_llm) -> Iterator[Surface]:
    fake_llm.default = routed({})
    core = make_server()
    tools = {t.name: sorted((t.input_schema or {}).get("properties", {})) for t in core.tools}
    app = build_http_app(core, "127.0.0.1")
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(asgi_client(app)) as http:
        s = Surface(portal, http, tools)
        sink = logger.add(
            lambda m: s.tracebacks.append(str(m)) if m.record["exception"] or "Traceback" in str(m) else None,
            level="DEBUG",
        )
        handler = _Tracebacks(s.tracebacks)
        logging.getLogger().addHandler(handler)
        try:
            yield s
        finally:
            logger.remove(sink)
            logging.getLogger().removeHandler(handler)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    out = {
        "content-type": draw(st.sampled_from(CONTENT_TYPES)),
        "accept": draw(st.sampled_from(ACCEPTS)),
        "mcp-protocol-version": draw(st.sampled_from(VERSIONS) | HEADER_TEXT),
    }
    if draw(st.booleans()):
        out["mcp-session-id"] = draw(HEADER_TEXT)
    if draw(st.booleans()):
        out["x-" + draw(st.text("abcdefgh", min_size=1, max_size=6))] = draw(HEADER_TEXT)
    return {k: v for k, v in out.items() if v}


@st.composite
def tool_call(draw: st.DrawFn, tools: dict[str, list[str]]) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(tools)) | st.text(max_size=20))
    names = tools.get(name, []) + ["deadline_s", "background", "idempotency_key", "profile"]
    args = draw(st.dictionaries(st.sampled_from(names) | st.text(max_size=8), JSON, max_size=5))
    return {"name": name, "arguments": draw(st.sampled_from([args, args, None, [], "x"]))}


@st.composite
def envelope(draw: st.DrawFn, tools: dict[str, list[str]]) -> Any:
    method = draw(st.sampled_from(sorted(MCP_METHODS)) | st.text(max_size=30))
    params = draw(tool_call(tools)) if method == "tools/call" or draw(st.booleans()) else draw(JSON)
    msg: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0"])), "method": method}
    if draw(st.booleans()):
        msg["id"] = draw(st.integers() | st.text(max_size=10) | st.none())
    if params is not None:
        msg["params"] = params
    return [msg, msg] if draw(st.integers(0, 9)) == 0 else msg


def nested(levels: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * levels + "1" + closer * levels).encode()


def _check(surface: Surface, status: int) -> None:
    assert status != 500 and not surface.tracebacks, (status, surface.tracebacks[:3])


def test_fuzzed_json_rpc_requests(surface: Surface) -> None:
    @FUZZ
    @given(st.data())
    def one(data: st.DataObject) -> None:
        body = data.draw(envelope(surface.tools))
        encoding = data.draw(st.sampled_from(ENCODINGS))
        text = json.dumps(body, ensure_ascii=data.draw(st.booleans()))
        _check(surface, surface.post(text.encode(encoding, errors="replace"), data.draw(headers())))

    one()
    _metrics_bounded(surface)
    assert {200, 202} & set(surface.statuses)  # some requests got through to the tools


def test_fuzzed_bytes_and_nesting(surface: Surface) -> None:
    @FUZZ
    @given(
        st.one_of(
            st.binary(max_size=300),
            st.builds(nested, st.integers(1, 3000), st.sampled_from(["[", '{"a":'])),
        ),
        headers(),
    )
    def one(content: bytes, hdrs: dict[str, str]) -> None:
        _check(surface, surface.post(content, hdrs))

    one()
    _metrics_bounded(surface)


def _metrics_bounded(surface: Surface) -> None:
    body = surface.get("/metrics")
    assert len(body) < 120_000, len(body)
    allowed = MCP_METHODS | set(surface.tools) | {OTHER}
    methods = set(re.findall(r'method="([^"]*)"', body))
    assert methods <= allowed, methods - allowed
