"""Real-model tier: a tiny eval (2 claims, tool and direct baseline) on the embedded SmolLM2 model
through the run service. Asserts structure, never answer quality.

Run with `python -m pytest -m realmodel tests/eval/test_realmodel_eval.py` (1-3 min on 2 busy cores).
"""

from __future__ import annotations

import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget
from reasonkit.eval.datasets import load_dataset
from reasonkit.eval.harness import EvalSpec, run_eval
from reasonkit.eval.results import EvalLog
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.runs import RunService

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'")

from reasonkit.providers.local import build_local_provider
from tests.providers.test_realmodel_local import only_when_selected  # noqa: F401 - the tier's gate

pytestmark = [pytest.mark.anyio, pytest.mark.realmodel, pytest.mark.timeout(400)]


async def test_tiny_eval_on_the_local_model(tmp_path):
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "data")})
    settings.protocols.dirs = []
    service = RunService(settings, load_registry([]), metrics=Metrics())
    provider = build_local_provider(None)
    dataset = load_dataset("claims", n=2, seed=0)
    spec = EvalSpec("protocol", "proofguard", dataset, budget=Budget(seconds=150))
    meta = {"kind": "protocol", "name": "proofguard", "dataset": "claims", "model": provider.model}
    log = EvalLog(tmp_path / "out")
    try:
        summary = await run_eval(service, provider, spec, log, meta)
    finally:
        await provider.aclose()
    rows = log.rows()
    assert sorted((r["id"], r["arm"]) for r in rows) == sorted(
        (item.id, arm) for item in dataset.items for arm in ("tool", "direct")
    )
    for row in rows:
        assert 0.0 <= row["confidence"] <= 1.0
        assert isinstance(row["correct"], bool)
        assert row["model"] == provider.model
    for arm in ("tool", "direct"):
        assert summary[arm]["n"] == 2
        assert summary[arm]["tokens"] > 0 and summary[arm]["cost_usd"] == 0.0
    assert summary["multiples"]["tokens"] > 1  # the tool's several calls against one
