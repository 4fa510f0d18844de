"""OpenTelemetry tracing against a real OTLP/HTTP receiver on 127.0.0.1: the exporter's protobuf
requests are decoded (opentelemetry-proto) and the span tree of MCP tool calls is checked (tool call ->
entry -> step -> LLM call), with the GenAI attributes, the run id, no prompt text unless
`capture_content`, and the trace id in JSON log lines."""

# ruff: noqa: F811 - the fixtures make_server and proto_dir come from tests/server/conftest.py

from __future__ import annotations

import gzip
import io
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from loguru import logger
from mcp import Client

from reasonkit.observability import tracing
from reasonkit.observability.logging import setup_logging
from tests.fakes.fake_llm import Reply, schema_filler
from tests.server.conftest import make_server, make_settings, proto_dir  # noqa: F401 - fixtures

trace_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="pip install 'reasonkit[dev]' (opentelemetry-proto)",
)

pytestmark = pytest.mark.anyio
SECRET_QUERY = "what does the zebra-question-7731 mean"


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent: str
    kind: int
    attrs: dict[str, Any]
    status: int


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                found = [
                    Span(
                        s.name,
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex(),
                        s.kind,
                        {a.key: _value(a.value) for a in s.attributes},
                        s.status.code,
                    )
                    for rs in request.resource_spans
                    for ss in rs.scope_spans
                    for s in ss.spans
                ]
                with receiver.lock:
                    receiver.paths.append(self.path)
                    receiver.spans += found
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    tracing.shutdown_tracing()
    r.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    setup_logging(level="warning")


async def exported(receiver: Receiver, run_id: str, names: int, within: float = 10.0) -> list[Span]:
    """The spans of one run once the run span (the last to end) has arrived."""
    assert tracing.flush()
    with anyio.fail_after(within):
        while True:
            spans = [s for s in receiver.snapshot() if s.attrs.get("reasonkit.run_id") == run_id]
            if len(spans) >= names and any(s.name.startswith("execute_tool") for s in spans):
                return spans
            await anyio.sleep(0.02)


def traced_settings(fake_llm: Any, tmp_path: Any, receiver: Receiver, **env: str) -> Any:
    fake_llm.default = schema_filler
    return make_settings(
        fake_llm, tmp_path / "data", ENABLE_TRACING="true", OTLP_ENDPOINT=receiver.url, **env
    )


async def call(core: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with Client(core.server) as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_span_tree_of_a_tool_call(make_server, fake_llm, tmp_path, receiver):
    core = make_server(settings=traced_settings(fake_llm, tmp_path, receiver))
    out = await call(core, "tiny", {"query": SECRET_QUERY})
    run_id = out["run_id"]
    spans = await exported(receiver, run_id, names=6)
    assert set(receiver.paths) == {"/v1/traces"}
    by_id = {s.span_id: s for s in spans}
    [root] = [s for s in spans if s.name == "execute_tool tiny"]
    assert root.parent == ""
    assert root.attrs["gen_ai.operation.name"] == "execute_tool"
    assert root.attrs["gen_ai.tool.name"] == "tiny"
    assert root.attrs["reasonkit.status"] == "complete"
    [entry] = [s for s in spans if s.name == "entry tiny"]
    assert entry.parent == root.span_id
    steps = {s.name: s for s in spans if s.name.startswith("step ")}
    assert set(steps) == {"step tiny.first", "step tiny.join"}
    assert all(s.parent == entry.span_id for s in steps.values())
    assert all(s.attrs["reasonkit.status"] == "ok" for s in steps.values())
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == len(fake_llm.requests) == 2
    assert {by_id[c.parent].name for c in calls} == {"step tiny.first", "step tiny.join"}
    for c in calls:
        assert c.kind == 3  # SPAN_KIND_CLIENT
        assert c.attrs["gen_ai.operation.name"] == "chat"
        assert c.attrs["gen_ai.system"] == c.attrs["gen_ai.provider.name"] == "openai"
        assert c.attrs["gen_ai.request.model"] == c.name.removeprefix("chat ")
        assert c.attrs["gen_ai.usage.input_tokens"] > 0 and c.attrs["gen_ai.usage.output_tokens"] > 0
    assert (
        root.attrs["gen_ai.usage.input_tokens"]
        == out["tokens"]["input"]
        == sum(c.attrs["gen_ai.usage.input_tokens"] for c in calls)
    )
    assert {s.trace_id for s in spans} == {root.trace_id}
    assert all(s.attrs["reasonkit.run_id"] == run_id for s in spans)
    # No prompt text by default: neither the query nor the rendered prompt.
    dumped = json.dumps([s.attrs for s in spans])
    assert "zebra-question-7731" not in dumped and "FIRST" not in dumped
    assert "gen_ai.input.messages" not in dumped


async def test_profile_and_for_each_items_nest_under_their_step(make_server, fake_llm, tmp_path, receiver):
    core = make_server(settings=traced_settings(fake_llm, tmp_path, receiver))
    out = await call(core, "think", {"query": "q", "profile": "pair"})
    spans = await exported(receiver, out["run_id"], names=10)
    by_id = {s.span_id: s for s in spans}
    [root] = [s for s in spans if s.name == "execute_tool think"]
    entries = {s.name: s for s in spans if s.name.startswith("entry ")}
    assert set(entries) == {"entry tiny", "entry fan"}
    assert all(e.parent == root.span_id for e in entries.values())
    each = next(s for s in spans if s.name == "step fan.each")
    assert each.parent == entries["entry fan"].span_id
    item_calls = [s for s in spans if s.name.startswith("chat ") and s.parent == each.span_id]
    assert len(item_calls) >= 1  # one LLM call per for_each item, each under the step
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == len(fake_llm.requests)
    for c in calls:  # every call: call -> step -> entry -> tool call
        step = by_id[c.parent]
        assert step.name.startswith("step ")
        assert by_id[step.parent].name.startswith("entry ")
        assert by_id[by_id[step.parent].parent] is root


async def test_capture_content_puts_prompts_in_spans(make_server, fake_llm, tmp_path, receiver):
    settings = traced_settings(fake_llm, tmp_path, receiver)
    settings.tracing.capture_content = True
    core = make_server(settings=settings)
    out = await call(core, "tiny", {"query": SECRET_QUERY})
    spans = await exported(receiver, out["run_id"], names=6)
    first = next(
        s for s in spans if s.name.startswith("chat ") and "FIRST" in s.attrs.get("gen_ai.input.messages", "")
    )
    assert "zebra-question-7731" in first.attrs["gen_ai.input.messages"]
    assert json.loads(first.attrs["gen_ai.output.messages"])[0]["role"] == "assistant"


def _reply_with_pii(request: Any) -> Reply:
    """A valid reply whose text fields carry personal data (a model echoing what it was given)."""
    reply = schema_filler(request)
    reply.json = {
        k: f"{v} mail jane.doe@example.com" if isinstance(v, str) else v for k, v in reply.json.items()
    }
    return reply


async def test_redact_pii_covers_span_content(make_server, fake_llm, tmp_path, receiver):
    """With `[privacy] redact_pii`, prompts and model replies in spans are redacted like stored runs."""
    settings = traced_settings(fake_llm, tmp_path, receiver)
    settings.tracing.capture_content = True
    settings.privacy.redact_pii = True
    fake_llm.default = _reply_with_pii
    core = make_server(settings=settings)
    out = await call(core, "tiny", {"query": "call +44 20 7946 0958 about 4111 1111 1111 1111"})
    spans = await exported(receiver, out["run_id"], names=6)
    calls = [s for s in spans if s.name.startswith("chat ")]
    dumped = json.dumps([s.attrs for s in calls])
    assert "jane.doe" not in dumped and "7946" not in dumped and "4111" not in dumped
    replies = [json.loads(c.attrs["gen_ai.output.messages"])[0]["content"] for c in calls]
    assert all("[EMAIL]" in r for r in replies)
    assert any("[PHONE]" in c.attrs["gen_ai.input.messages"] for c in calls)


async def test_trace_id_in_json_logs(make_server, fake_llm, tmp_path, receiver):
    settings = traced_settings(fake_llm, tmp_path, receiver, LOG_FORMAT="json")
    stream = io.StringIO()
    setup_logging(settings, stream=stream, level="info", fmt="json")
    core = make_server(settings=settings)
    out = await call(core, "tiny", {"query": "q"})
    spans = await exported(receiver, out["run_id"], names=6)
    [root] = [s for s in spans if s.name == "execute_tool tiny"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    finished = [x for x in lines if x["message"] == "run finished" and x.get("run_id") == out["run_id"]]
    assert finished and finished[0]["trace_id"] == root.trace_id
    assert finished[0]["span_id"] == root.span_id
    logger.info("outside any run")
    outside = json.loads(stream.getvalue().splitlines()[-1])
    assert outside["message"] == "outside any run" and "trace_id" not in outside


async def test_provider_error_marks_the_call_span(make_server, fake_llm, tmp_path, receiver):
    fake_llm.push(Reply(status=400, text="bad request from the fake"))
    core = make_server(settings=traced_settings(fake_llm, tmp_path, receiver))
    async with Client(core.server) as client:
        result = await client.call_tool("tiny", {"query": "q"})
    run_id = result.structured_content["run_id"]
    spans = await exported(receiver, run_id, names=3)
    failed = [s for s in spans if s.name.startswith("chat ") and s.status == 2]  # STATUS_CODE_ERROR
    assert failed and failed[0].attrs["error.type"]


def test_endpoint_forms(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.traces_endpoint(None) == "http://localhost:4318/v1/traces"
    assert tracing.traces_endpoint("http://jaeger:4318") == "http://jaeger:4318/v1/traces"
    assert tracing.traces_endpoint("http://jaeger:4318/") == "http://jaeger:4318/v1/traces"
    assert tracing.traces_endpoint("http://c:4318/custom/traces") == "http://c:4318/custom/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/v1/traces")
    assert tracing.traces_endpoint(None) == "http://t:1/v1/traces"


def test_disabled_is_a_no_op(fake_llm, tmp_path):
    settings = make_settings(fake_llm, tmp_path / "data")
    assert tracing.setup_tracing(settings) is False
    assert tracing.tracer() is None and tracing.current_ids() is None


def test_missing_sdk_gives_one_clear_warning(fake_llm, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    monkeypatch.setattr(tracing._state, "warned", False)
    stream = io.StringIO()
    setup_logging(stream=stream, level="info")
    settings = make_settings(fake_llm, tmp_path / "data", ENABLE_TRACING="true")
    assert tracing.setup_tracing(settings) is False
    assert tracing.setup_tracing(settings) is False
    warnings = [line for line in stream.getvalue().splitlines() if "OpenTelemetry is not installed" in line]
    assert len(warnings) == 1
    assert "pip install 'reasonkit[tracing]'" in warnings[0]


def test_grpc_port_gets_a_warning(fake_llm, tmp_path):
    stream = io.StringIO()
    setup_logging(stream=stream, level="info")
    settings = make_settings(
        fake_llm, tmp_path / "data", ENABLE_TRACING="true", OTLP_ENDPOINT="http://127.0.0.1:4317"
    )
    try:
        assert tracing.setup_tracing(settings) is True
    finally:
        tracing.shutdown_tracing()
    assert "OTLP/gRPC port" in stream.getvalue()


async def test_rk_think_exports_its_spans_before_exiting(fake_llm, tmp_path, receiver):
    """`rk think` in a subprocess: a short-lived process still delivers its spans (flushed at exit)."""
    import os
    import subprocess

    fake_llm.default = schema_filler
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "ENABLE_TRACING": "true",
        "OTLP_ENDPOINT": receiver.url,
    }
    done = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "reasonkit.cli", "think", "--profile", "quick", "--format", "json", "q?"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    spans = [s for s in receiver.snapshot() if s.attrs.get("reasonkit.run_id") == run_id]
    [root] = [s for s in spans if s.name == "rk think quick"]
    assert root.attrs["gen_ai.operation.name"] == "invoke_agent" and root.parent == ""
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == len(fake_llm.requests) > 0
    assert {s.trace_id for s in spans} == {root.trace_id}


def test_otel_sdk_disabled_wins(fake_llm, tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    settings = make_settings(fake_llm, tmp_path / "data", ENABLE_TRACING="true")
    assert tracing.setup_tracing(settings) is False and tracing.tracer() is None
