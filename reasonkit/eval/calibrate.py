"""`rk eval fit`: fit an isotonic calibrator per (tool or profile, model) from eval output folders.

The fit is scikit-learn's `IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")` of
correctness (1 or 0) on the tool's heuristic confidence (`confidence_raw`, so refitting never fits
on already calibrated values). Its breakpoints (`X_thresholds_`, `y_thresholds_`) are saved as
JSON under `<data folder>/calibration/` (reasonkit/engine/calibration.py applies them at run time,
without scikit-learn). scikit-learn is in the `eval` extra only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonkit.engine.calibration import Calibrator, save_calibrator
from reasonkit.errors import EvalError
from reasonkit.eval.results import EvalLog

__all__ = ["MIN_ITEMS", "fit_and_save", "fit_folders", "fit_isotonic"]

MIN_ITEMS = 10


def fit_isotonic(confidence: Sequence[float], correct: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Breakpoints (x, y) of the isotonic fit of correctness on confidence."""
    try:
        from sklearn.isotonic import IsotonicRegression
    except ImportError:
        raise EvalError("rk eval fit needs scikit-learn: pip install 'reasonkit[eval]'") from None
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    model.fit([float(c) for c in confidence], [1.0 if y else 0.0 for y in correct])
    xs = [round(float(v), 6) for v in model.X_thresholds_]
    ys = [round(min(1.0, max(0.0, float(v))), 6) for v in model.y_thresholds_]
    return xs, ys


def fit_folders(folders: Sequence[Path | str], *, min_items: int = MIN_ITEMS) -> list[Calibrator]:
    """One calibrator per (kind, name, model) found in the folders' tool rows."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for folder in folders:
        log = EvalLog(folder)
        meta = log.meta()
        if meta is None:
            raise EvalError(f"{log.dir} is not an eval output folder (no meta.json)")
        for row in log.rows():
            if row["arm"] != "tool" or row.get("error"):
                continue
            key = (str(meta.get("kind")), str(meta.get("name")), str(row.get("model") or meta.get("model")))
            group = groups.setdefault(key, {"confidence": [], "correct": [], "folders": set()})
            raw = row.get("confidence_raw")
            group["confidence"].append(float(raw if raw is not None else row.get("confidence") or 0.0))
            group["correct"].append(bool(row.get("correct")))
            group["folders"].add(str(log.dir.resolve()))
    if not groups:
        raise EvalError("no graded tool items in " + ", ".join(str(f) for f in folders))
    calibrators = []
    for (kind, name, model), group in sorted(groups.items()):
        n = len(group["correct"])
        if n < min_items:
            raise EvalError(
                f"{kind} {name} on {model}: {n} graded item(s), a calibrator needs at least {min_items} "
                "(run a larger eval, or lower --min-items)"
            )
        xs, ys = fit_isotonic(group["confidence"], group["correct"])
        meta = {"fitted_at": time.time(), "folders": sorted(group["folders"]), "method": "isotonic"}
        calibrators.append(Calibrator(kind=kind, name=name, model=model, x=xs, y=ys, n=n, meta=meta))
    return calibrators


def fit_and_save(folders: Sequence[Path | str], data_dir: Path, *, min_items: int = MIN_ITEMS) -> list[Path]:
    return [save_calibrator(data_dir, c) for c in fit_folders(folders, min_items=min_items)]
