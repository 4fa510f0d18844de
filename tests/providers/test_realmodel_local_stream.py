"""Real-model tier: the embedded SmolLM2-135M hands its reply to `on_text` as it generates it, and a
reply that repeats itself is cut at once (`stop_reason="repetition"`) instead of running to
max_tokens. Run with `python -m pytest -m realmodel tests/providers/test_realmodel_local_stream.py`."""

from __future__ import annotations

import pytest

from reasonkit.providers.base import LLMRequest
from tests.providers.test_realmodel_local import only_when_selected  # noqa: F401 - an autouse fixture

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'")

from reasonkit.providers.local import LocalOptions, build_local_provider

pytestmark = [pytest.mark.anyio, pytest.mark.realmodel, pytest.mark.timeout(300)]
SCHEMA = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
}


async def test_the_reply_reaches_on_text_as_it_is_generated():
    provider = build_local_provider(None)
    pieces: list[str] = []
    request = LLMRequest(
        [{"role": "user", "content": "Is the sky blue? Answer in one sentence."}],
        schema=SCHEMA,
        max_tokens=120,
        on_text=pieces.append,
    )
    response = await provider.complete(request)
    assert len(pieces) > 5  # piece by piece, not the whole reply at the end
    assert response.parsed is not None
    assert "".join(pieces).replace(" ", "") == response.text.replace(" ", "")  # same JSON, re-serialised


async def test_a_reply_that_loops_is_cut_at_once():
    # No repeat penalty and a greedy sampler: the model repeats the phrase it is asked to repeat.
    provider = build_local_provider(LocalOptions(repeat_penalty=1.0, max_tokens=0))
    line = "the bakery sells fresh bread online every single day."
    request = LLMRequest(
        [{"role": "user", "content": "Repeat after me forever: " + " ".join([line] * 5)}],
        temperature=0.0,
        max_tokens=1500,
    )
    response = await provider.complete(request)
    assert response.stop_reason == "repetition", response.text[:500]
    assert response.usage.output < 100  # cut after a few repeats (39 tokens measured), not 1,500
