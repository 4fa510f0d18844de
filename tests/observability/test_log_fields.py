"""JSON run logs carry what the deployment guide's log example shows: provider, model, the tools
executed and, with tracing on, the trace id (`rk think` as a subprocess against the fake LLM server;
an OTLP sink on 127.0.0.1 takes the spans)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.fake_llm import schema_filler
from tests.server.procs import rk_command


@pytest.fixture
def otlp_sink() -> Iterator[str]:
    """Accepts OTLP/HTTP exports (any POST gets 200 with an empty protobuf body)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _think(tmp_path, fake_llm, profile: str, **extra: str) -> list[dict]:
    fake_llm.default = schema_filler
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "LLM_DEFAULT_MODEL": "gpt-log-test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        # the child runs this checkout's code, not whatever the venv's rk was installed from
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        **extra,
    }
    out = subprocess.run(
        [*rk_command(), "think", "--profile", profile, "Should we cache LLM replies?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]


def test_run_log_has_provider_model_and_tools(tmp_path, fake_llm):
    lines = _think(tmp_path, fake_llm, "quick")
    (done,) = [x for x in lines if x["message"] == "run finished"]
    assert done["provider"] == "openai" and done["model"] == "gpt-log-test"
    assert done["tools_executed"] == ["gigathink", "laserlogic"]  # the quick profile's chain
    assert done["profile"] == "quick" and done["run_id"] and done["status"] in ("complete", "incomplete")
    assert "trace_id" not in done  # tracing is off


def test_run_log_has_the_trace_id_with_tracing_on(tmp_path, fake_llm, otlp_sink):
    pytest.importorskip("opentelemetry.sdk", reason="pip install 'reasonkit[tracing]'")
    lines = _think(tmp_path, fake_llm, "quick", ENABLE_TRACING="true", OTLP_ENDPOINT=otlp_sink)
    (done,) = [x for x in lines if x["message"] == "run finished"]
    assert len(done.get("trace_id", "")) == 32 and int(done["trace_id"], 16) != 0, done
