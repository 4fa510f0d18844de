"""The calibrator: fitted with scikit-learn (`rk eval fit`), applied without it at run time."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget
from reasonkit.engine.calibration import Calibrator, calibrator_path, load_calibrator, save_calibrator
from reasonkit.errors import CalibrationError, EvalError
from reasonkit.eval.calibrate import fit_folders, fit_isotonic
from reasonkit.eval.metrics import ece_equal_mass, ece_equal_width
from reasonkit.eval.results import EvalLog
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.fake import FakeProvider
from reasonkit.run_request import CLI_METHOD
from reasonkit.runs import RunService

isotonic = pytest.importorskip("sklearn.isotonic", reason="scikit-learn: pip install 'reasonkit[eval]'")


def overconfident(n: int, seed: int) -> tuple[list[float], list[bool]]:
    """A heuristic that says 0.5-1.0 where the truth is its square: over-confident throughout."""
    rng = random.Random(seed)
    confidence = [round(0.5 + 0.5 * rng.random(), 3) for _ in range(n)]
    correct = [rng.random() < (c - 0.5) * 1.6 for c in confidence]
    return confidence, correct


def test_applying_breakpoints_matches_scikit_learns_predict():
    confidence, correct = overconfident(400, 1)
    model = isotonic.IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(confidence, correct)
    xs, ys = fit_isotonic(confidence, correct)
    calibrator = Calibrator("protocol", "proofguard", "m", xs, ys)
    probes = [0.0, 0.3, 0.5, 0.55, 0.61, 0.777, 0.9, 0.999, 1.0, 1.5]
    assert [calibrator.apply(p) for p in probes] == pytest.approx(list(model.predict(probes)), abs=1e-5)


def test_a_calibrator_fitted_on_one_split_lowers_ece_on_another():
    train, test = overconfident(600, 2), overconfident(600, 3)
    xs, ys = fit_isotonic(*train)
    calibrator = Calibrator("protocol", "proofguard", "m", xs, ys, n=600)
    raw, correct = test
    calibrated = [calibrator.apply(c) for c in raw]
    assert ece_equal_width(raw, correct) > 0.2
    assert ece_equal_width(calibrated, correct) < ece_equal_width(raw, correct) / 3
    assert ece_equal_mass(calibrated, correct) < ece_equal_mass(raw, correct) / 3


def test_bad_calibrators_are_refused(tmp_path):
    with pytest.raises(CalibrationError, match="sorted"):
        Calibrator("protocol", "p", "m", [0.5, 0.1], [0.1, 0.2])
    with pytest.raises(CalibrationError, match=r"\[0, 1\]"):
        Calibrator("protocol", "p", "m", [0.1], [1.5])
    path = calibrator_path(tmp_path, "protocol", "p", "m")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="cannot be read"):
        load_calibrator(tmp_path, "protocol", "p", "m")
    path.write_text(json.dumps({"kind": "protocol"}))
    with pytest.raises(CalibrationError, match="not a calibrator"):
        load_calibrator(tmp_path, "protocol", "p", "m")


def _eval_folder(folder: Path, rows: list[tuple[float, bool]], model: str = "fake-model") -> None:
    log = EvalLog(folder)
    log.start({"kind": "protocol", "name": "laserlogic", "dataset": "arguments", "model": model})
    for i, (confidence, correct) in enumerate(rows):
        log.append(
            {
                "id": f"i{i}",
                "arm": "tool",
                "confidence": confidence,
                "confidence_raw": confidence,
                "correct": correct,
                "model": model,
            }
        )
        log.append(
            {"id": f"i{i}", "arm": "direct", "confidence": 1.0, "correct": not correct, "model": model}
        )


def test_fit_folders_groups_by_target_and_model_and_fits_raw_confidence(tmp_path):
    _eval_folder(tmp_path / "a", [(0.9, True), (0.8, True), (0.7, False), (0.2, False)] * 3)
    (calibrator,) = fit_folders([tmp_path / "a"])
    assert (calibrator.kind, calibrator.name, calibrator.model, calibrator.n) == (
        "protocol",
        "laserlogic",
        "fake-model",
        12,
    )
    assert calibrator.apply(0.9) == 1.0 and calibrator.apply(0.2) == 0.0  # direct rows were left out
    with pytest.raises(EvalError, match="at least 20"):
        fit_folders([tmp_path / "a"], min_items=20)
    with pytest.raises(EvalError, match="not an eval output folder"):
        fit_folders([tmp_path / "nothing"])


# ------------------------------------------------------------------ at run time, in the run service
def make_service(data_dir: Path) -> RunService:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(data_dir)})
    settings.protocols.dirs = []
    return RunService(settings, load_registry([]), metrics=Metrics())


async def _run(service: RunService, provider: FakeProvider):
    clean = service.check("protocol", "laserlogic", {"argument": "A, so B."}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, provider, method=CLI_METHOD)
    return await service.execute(run, Budget(seconds=30))


@pytest.mark.anyio
async def test_a_saved_calibrator_changes_later_runs_confidence(tmp_path):
    data_dir = tmp_path / "data"
    service, provider = make_service(data_dir), FakeProvider(confidence=0.9)
    before = await _run(service, provider)
    assert before.confidence_raw is None and "confidence_raw" not in before.summary()
    assert before.meets_threshold  # 0.9 everywhere is above laserlogic's threshold
    raw = before.confidence

    # a calibrator saying this tool on this model is right about 30% of the time at that confidence
    save_calibrator(
        data_dir, Calibrator("protocol", "laserlogic", provider.model, [0.0, 1.0], [0.0, 0.3], n=50)
    )
    after = await _run(service, provider)
    assert after.confidence_raw == pytest.approx(raw)
    assert after.confidence == pytest.approx(0.3 * raw, abs=1e-5)
    last = after.confidence_breakdown[-1]
    assert last.signal == "calibration" and "laserlogic" in last.detail and "50 items" in last.detail
    assert sum(f.delta for f in after.confidence_breakdown) == pytest.approx(after.confidence, abs=1e-3)
    assert not after.meets_threshold  # decided on the calibrated value
    summary = after.summary()
    assert summary["confidence_raw"] == pytest.approx(raw, abs=1e-4)
    assert summary["confidence_breakdown"][-1]["signal"] == "calibration"

    other = FakeProvider(confidence=0.9, model="another-model")  # calibrators are per model
    assert (await _run(service, other)).confidence_raw is None


@pytest.mark.anyio
async def test_an_unreadable_calibrator_is_ignored_not_fatal(tmp_path):
    data_dir = tmp_path / "data"
    provider = FakeProvider(confidence=0.9)
    path = calibrator_path(data_dir, "protocol", "laserlogic", provider.model)
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    result = await _run(make_service(data_dir), provider)
    assert result.status == "complete" and result.confidence_raw is None
