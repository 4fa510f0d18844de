"""The harness end to end through the run service, against a scripted fake model: confidence that
tracks correctness gives AUROC near 1, confidence that does not gives about 0.5; the direct
baseline is reported beside the tool; an interrupted eval resumes without repeating items."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from reasonkit.config import load_settings
from reasonkit.errors import EvalError
from reasonkit.eval.harness import DIRECT_SYSTEM, EvalSpec, run_eval
from reasonkit.eval.results import EvalLog
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.runs import RunService
from tests.eval.scripted import Script, ScriptedProvider, claims_dataset

pytestmark = pytest.mark.anyio


def make_service(tmp_path: Path) -> RunService:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "data")})
    settings.protocols.dirs = []
    return RunService(settings, load_registry([]), metrics=Metrics())


def meta(provider: ScriptedProvider) -> dict:
    return {
        "kind": "protocol",
        "name": "proofguard",
        "dataset": "claims",
        "seed": 0,
        "provider": provider.name,
        "model": provider.model,
    }


def tracking() -> list[Script]:
    """Right answers are confident, wrong ones are not."""
    return [
        Script(label=i % 2 == 0, right=i % 3 != 0, confidence=0.95 if i % 3 != 0 else 0.1) for i in range(12)
    ]


def not_tracking() -> list[Script]:
    """The same confidence everywhere; right and wrong spread evenly over both labels and verdicts."""
    return [Script(label=i < 8, right=i % 2 == 0, confidence=0.7) for i in range(16)]


async def evaluate(
    tmp_path: Path, scripts: list[Script], baseline: bool = True
) -> tuple[dict, ScriptedProvider]:
    dataset, by_claim = claims_dataset(scripts)
    provider = ScriptedProvider(by_claim)
    spec = EvalSpec("protocol", "proofguard", dataset, baseline=baseline)
    log = EvalLog(tmp_path / "out")
    return await run_eval(make_service(tmp_path), provider, spec, log, meta(provider)), provider


async def test_confidence_that_tracks_correctness_has_auroc_near_one(tmp_path):
    summary, _ = await evaluate(tmp_path, tracking())
    tool = summary["tool"]
    assert tool["n"] == 12
    assert tool["accuracy"] == pytest.approx(8 / 12, abs=1e-3)
    assert tool["auroc"] >= 0.95
    assert tool["selective_accuracy_50"] == 1.0  # the confident half is all right
    assert tool["tokens"] > 0 and tool["errors"] == 0
    direct = summary["direct"]
    assert direct["n"] == 12 and direct["accuracy"] == pytest.approx(8 / 12, abs=1e-3)
    assert direct["auroc"] == pytest.approx(1.0)  # the baseline's own confidence tracks too
    assert summary["multiples"]["tokens"] > 1  # the tool makes several calls, the baseline one
    saved = (tmp_path / "out" / "summary.json").read_text()
    assert '"auroc"' in saved


async def test_confidence_that_does_not_track_has_auroc_about_half(tmp_path):
    summary, _ = await evaluate(tmp_path, not_tracking())
    tool = summary["tool"]
    assert tool["accuracy"] == pytest.approx(0.5)
    assert tool["auroc"] == pytest.approx(0.5, abs=0.1)
    assert summary["direct"]["auroc"] == pytest.approx(0.5)  # one confidence for all: ties only


async def test_all_right_reports_auroc_undefined(tmp_path):
    scripts = [Script(label=i % 2 == 0, right=True, confidence=0.9) for i in range(4)]
    summary, _ = await evaluate(tmp_path, scripts, baseline=False)
    assert summary["tool"]["auroc"] == "undefined: one class"
    assert summary["direct"] is None and "multiples" not in summary


async def test_an_interrupted_eval_resumes_without_repeating_items(tmp_path):
    scripts = tracking()
    dataset, by_claim = claims_dataset(scripts)
    log = EvalLog(tmp_path / "out")
    first = ScriptedProvider(by_claim)
    spec = EvalSpec("protocol", "proofguard", dataset)

    five_done = anyio.Event()

    def progress(done: int, total: int, line: str) -> None:
        if done >= 5:
            five_done.set()

    with anyio.move_on_after(30) as scope:  # a bounded wait, not a timed assertion
        async with anyio.create_task_group() as group:
            group.start_soon(run_eval, make_service(tmp_path), first, spec, log, meta(first), progress)
            await five_done.wait()
            group.cancel_scope.cancel()  # Ctrl-C in the middle of the eval
    assert not scope.cancelled_caught
    done_before = log.done()
    assert 5 <= len(done_before) < 24
    with log.items_path.open("a") as handle:
        handle.write('{"id": "torn')  # a write cut off by the kill

    second = ScriptedProvider(by_claim)
    summary = await run_eval(make_service(tmp_path), second, spec, log, meta(second))
    rows = log.rows()
    keys = [(r["id"], r["arm"]) for r in rows]
    assert len(keys) == len(set(keys)) == 24  # every item and arm once
    # the second run asked only for what the first had not finished
    missing = {
        arm: sum((item.id, arm) not in done_before for item in dataset.items) for arm in ("tool", "direct")
    }
    assert len(second.direct_calls) == missing["direct"]
    plans = [r for r in second.requests if "Plan the verification" in (r.messages[-1].get("content") or "")]
    assert len(plans) == missing["tool"]
    assert summary["tool"]["n"] == 12 and summary["direct"]["n"] == 12


async def test_a_folder_of_another_eval_is_refused(tmp_path):
    dataset, by_claim = claims_dataset(tracking()[:2])
    provider = ScriptedProvider(by_claim)
    log = EvalLog(tmp_path / "out")
    service = make_service(tmp_path)
    await run_eval(service, provider, EvalSpec("protocol", "proofguard", dataset), log, meta(provider))
    other = {**meta(provider), "model": "another-model"}
    with pytest.raises(EvalError, match="holds another eval.*model"):
        await run_eval(service, provider, EvalSpec("protocol", "proofguard", dataset), log, other)


class ProseProvider(ScriptedProvider):
    """A model that answers the baseline in prose around the JSON, its confidence a percentage."""

    def respond(self, request, call=0):
        response = super().respond(request, call)
        if request.system == DIRECT_SYSTEM:
            response.parsed = None
            response.text = 'Sure! {"answer": "false", "confidence": "85%"} Hope that helps.'
        return response


async def test_the_baseline_reply_is_read_like_a_step_reply(tmp_path):
    dataset, by_claim = claims_dataset([Script(label=False, right=True, confidence=0.9)])
    provider = ProseProvider(by_claim)
    log = EvalLog(tmp_path / "out")
    await run_eval(
        make_service(tmp_path), provider, EvalSpec("protocol", "proofguard", dataset), log, meta(provider)
    )
    (direct,) = [r for r in log.rows() if r["arm"] == "direct"]
    assert (direct["answer"], direct["correct"], direct["confidence"]) == ("false", True, 0.85)
