"""Fitted confidence calibrators, applied at run time without scikit-learn.

`rk eval fit` (reasonkit/eval/calibrate.py) fits an isotonic regression of correctness on the
heuristic confidence of one tool or profile on one model, and saves its breakpoints as JSON under
`<data folder>/calibration/`. Applying it is piecewise-linear interpolation over those breakpoints,
clipped to the first and last value outside them (what scikit-learn's `IsotonicRegression` with
`out_of_bounds="clip"` predicts), so the running server needs nothing but this module.

When a calibrator exists for a run's target and model, `calibrate` keeps the heuristic value in
`confidence_raw`, sets `confidence` to the calibrated value, ends the breakdown with a
`calibration` factor (the deltas still add up to the final value) and re-decides `meets_threshold`.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from reasonkit.engine.result import Factor, RunResult
from reasonkit.errors import CalibrationError

__all__ = [
    "CALIBRATION_DIR",
    "Calibrator",
    "FORMAT_VERSION",
    "apply_saved_calibrator",
    "calibrate",
    "calibrator_key",
    "calibrator_path",
    "load_calibrator",
    "save_calibrator",
]

CALIBRATION_DIR = "calibration"
FORMAT_VERSION = 1


def calibrator_key(kind: str, name: str, model: str) -> str:
    """The file stem of the calibrator for a (protocol|profile, name, model): safe on every OS."""
    raw = f"{kind}-{name}--{model}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)[:200]


@dataclass
class Calibrator:
    """A monotone map from heuristic confidence to calibrated confidence, as breakpoints."""

    kind: str
    name: str
    model: str
    x: list[float]
    y: list[float]
    n: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.x or len(self.x) != len(self.y):
            raise CalibrationError("a calibrator needs as many x as y breakpoints, at least one")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise CalibrationError("calibrator breakpoints must be sorted by x")
        if any(not 0.0 <= v <= 1.0 for v in self.y):
            raise CalibrationError("calibrated values must lie in [0, 1]")

    def apply(self, value: float) -> float:
        """Piecewise-linear interpolation over the breakpoints, clipped outside them."""
        xs, ys = self.x, self.y
        if value <= xs[0]:
            return ys[0]
        if value >= xs[-1]:
            return ys[-1]
        i = bisect_right(xs, value)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        if x1 == x0:
            return y1
        return y0 + (y1 - y0) * (value - x0) / (x1 - x0)

    @property
    def key(self) -> str:
        return calibrator_key(self.kind, self.name, self.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "name": self.name,
            "model": self.model,
            "n": self.n,
            "x": self.x,
            "y": self.y,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        try:
            return cls(
                kind=str(data["kind"]),
                name=str(data["name"]),
                model=str(data["model"]),
                x=[float(v) for v in data["x"]],
                y=[float(v) for v in data["y"]],
                n=int(data.get("n", 0)),
                meta=dict(data.get("meta") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"not a calibrator: {exc}") from None


def calibrator_path(data_dir: Path, kind: str, name: str, model: str) -> Path:
    return Path(data_dir) / CALIBRATION_DIR / f"{calibrator_key(kind, name, model)}.json"


def save_calibrator(data_dir: Path, calibrator: Calibrator) -> Path:
    path = calibrator_path(data_dir, calibrator.kind, calibrator.name, calibrator.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(calibrator.to_json(), indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def load_calibrator(data_dir: Path, kind: str, name: str, model: str) -> Calibrator | None:
    """The calibrator for this target and model, None when there is none. Raises
    `CalibrationError` for a file that is there but unreadable."""
    path = calibrator_path(data_dir, kind, name, model)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: not a calibrator (expected a JSON object)")
    try:
        return Calibrator.from_json(data)
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {exc}") from None


def calibrate(result: RunResult, calibrator: Calibrator) -> None:
    """Apply `calibrator` to a finished run's confidence (see the module docstring)."""
    raw = result.confidence_raw if result.confidence_raw is not None else result.confidence
    value = round(calibrator.apply(raw), 6)
    result.confidence_raw = raw
    result.confidence = value
    detail = (
        f"isotonic calibrator for {calibrator.name} on {calibrator.model} (fitted on {calibrator.n} items)"
    )
    result.confidence_breakdown.append(Factor(signal="calibration", delta=value - raw, detail=detail))
    below_own_minimum = any(f.signal == "step_minimum" for f in result.confidence_breakdown)
    result.meets_threshold = value >= result.min_confidence and not below_own_minimum


def apply_saved_calibrator(result: RunResult, data_dir: Path) -> Calibrator | None:
    """The run service's hook: calibrate a finished run (complete or incomplete) when a calibrator
    is saved for its target and model. An unreadable calibrator file is logged and ignored (the
    run keeps its heuristic confidence), never raised."""
    if result.status not in ("complete", "incomplete") or not result.model:
        return None
    try:
        calibrator = load_calibrator(data_dir, result.kind, result.name, result.model)
    except CalibrationError as exc:
        logger.warning("calibrator ignored: {}", exc)
        return None
    if calibrator is not None:
        calibrate(result, calibrator)
    return calibrator
