"""How good a confidence score is: calibration and discrimination metrics, in plain Python.

Inputs are parallel lists: `confidence` in [0, 1] and `correct` (bool). Definitions:

- ECE (expected calibration error): the items are put into bins; ECE is the item-weighted mean over
  the bins of |accuracy in the bin - mean confidence in the bin|.
  - equal-width: 15 bins [0, 1/15), [1/15, 2/15), ... [14/15, 1] (1.0 falls in the last bin);
  - equal-mass: the items sorted by confidence (ties by their order) and cut into 15 groups whose
    sizes differ by at most one (fewer groups when there are fewer than 15 items).
- Brier score: the mean of (confidence - correct)^2; 0 is perfect, 0.25 is "always 0.5".
- AUROC: the probability that a random correct item has a higher confidence than a random wrong
  one (ties count half; the Mann-Whitney U statistic over n_correct * n_wrong). Undefined when all
  items are correct or all wrong: `auroc` returns None and `auroc_text` "undefined: one class".
- selective accuracy at coverage c: the accuracy of the ceil(c * n) most confident items (ties
  broken by item order), i.e. what answering only when confident would have scored.
- 95% intervals: percentile bootstrap, 1000 resamples of the items with replacement from a fixed
  seed (the same items give the same intervals). A metric undefined in more than half of the
  resamples (AUROC when a resample holds one class) has no interval.

Below 30 items, ECE and AUROC are not meaningful (a 15-bin ECE has about two items per bin; one
item moves AUROC by several points): `summarize` then adds a `note` saying so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

BINS = 15
UNDEFINED_ONE_CLASS = "undefined: one class"
SMALL_N = 30  # below it, ECE and AUROC say little (see the module docstring)
RESAMPLES = 1000
SEED = 0


def _check(confidence: Sequence[float], correct: Sequence[bool]) -> None:
    if len(confidence) != len(correct):
        raise ValueError("confidence and correct must have the same length")


def _ece(groups: list[list[int]], confidence: Sequence[float], correct: Sequence[bool]) -> float:
    n = sum(len(g) for g in groups)
    if n == 0:
        return 0.0
    total = 0.0
    for group in groups:
        if not group:
            continue
        acc = sum(1.0 for i in group if correct[i]) / len(group)
        mean_conf = sum(confidence[i] for i in group) / len(group)
        total += len(group) / n * abs(acc - mean_conf)
    return total


def equal_width_bins(confidence: Sequence[float], bins: int = BINS) -> list[list[int]]:
    groups: list[list[int]] = [[] for _ in range(bins)]
    for i, value in enumerate(confidence):
        index = min(bins - 1, max(0, int(math.floor(value * bins))))
        groups[index].append(i)
    return groups


def equal_mass_bins(confidence: Sequence[float], bins: int = BINS) -> list[list[int]]:
    order = sorted(range(len(confidence)), key=lambda i: confidence[i])
    count = min(bins, len(order))
    if count == 0:
        return []
    size, extra = divmod(len(order), count)
    groups, start = [], 0
    for k in range(count):
        end = start + size + (1 if k < extra else 0)
        groups.append(order[start:end])
        start = end
    return groups


def ece_equal_width(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float:
    _check(confidence, correct)
    return _ece(equal_width_bins(confidence, bins), confidence, correct)


def ece_equal_mass(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float:
    _check(confidence, correct)
    return _ece(equal_mass_bins(confidence, bins), confidence, correct)


def brier(confidence: Sequence[float], correct: Sequence[bool]) -> float:
    _check(confidence, correct)
    if not confidence:
        return 0.0
    return sum((c - (1.0 if y else 0.0)) ** 2 for c, y in zip(confidence, correct, strict=True)) / len(
        confidence
    )


def auroc(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Mann-Whitney AUROC with average ranks for ties; None when only one class is present."""
    _check(confidence, correct)
    n_pos = sum(1 for y in correct if y)
    n_neg = len(correct) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(confidence)), key=lambda i: confidence[i])
    ranks = [0.0] * len(order)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and confidence[order[end + 1]] == confidence[order[start]]:
            end += 1
        average = (start + end) / 2 + 1  # ranks are 1-based
        for k in range(start, end + 1):
            ranks[order[k]] = average
        start = end + 1
    rank_sum = sum(r for r, y in zip(ranks, correct, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def selective_accuracy(confidence: Sequence[float], correct: Sequence[bool], coverage: float) -> float | None:
    _check(confidence, correct)
    if not confidence:
        return None
    keep = max(1, math.ceil(coverage * len(confidence)))
    order = sorted(range(len(confidence)), key=lambda i: -confidence[i])[:keep]
    return sum(1 for i in order if correct[i]) / keep


def reliability(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS
) -> list[dict[str, Any]]:
    """Per equal-width bin: its range, item count, mean confidence and accuracy (for diagrams)."""
    rows = []
    for k, group in enumerate(equal_width_bins(confidence, bins)):
        row: dict[str, Any] = {"low": k / bins, "high": (k + 1) / bins, "n": len(group)}
        if group:
            row["confidence"] = sum(confidence[i] for i in group) / len(group)
            row["accuracy"] = sum(1 for i in group if correct[i]) / len(group)
        rows.append(row)
    return rows


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


Metric = Callable[[Sequence[float], Sequence[bool]], float | None]
METRICS: dict[str, Metric] = {
    "accuracy": lambda c, y: sum(1 for v in y if v) / len(y),
    "mean_confidence": lambda c, y: sum(c) / len(c),
    "ece_equal_width": ece_equal_width,
    "ece_equal_mass": ece_equal_mass,
    "brier": brier,
    "auroc": auroc,
    "selective_accuracy_50": lambda c, y: selective_accuracy(c, y, 0.5),
    "selective_accuracy_80": lambda c, y: selective_accuracy(c, y, 0.8),
}


def intervals(
    confidence: Sequence[float], correct: Sequence[bool], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, list[float] | None]:
    """The 95% percentile-bootstrap interval [low, high] of every metric (None: undefined in more
    than half of the resamples); deterministic for a given seed."""
    _check(confidence, correct)
    n = len(correct)
    if n == 0:
        return {}
    rng = random.Random(seed)
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        c, y = [confidence[i] for i in picks], [correct[i] for i in picks]
        for name, metric in METRICS.items():
            value = metric(c, y)
            if value is not None:
                values[name].append(value)
    out: dict[str, list[float] | None] = {}
    for name, found in values.items():
        if len(found) * 2 < resamples:
            out[name] = None
            continue
        found.sort()
        low, high = found[int(0.025 * len(found))], found[min(len(found) - 1, int(0.975 * len(found)))]
        out[name] = [round(low, 4), round(high, 4)]
    return out


def small_sample_note(n: int) -> str | None:
    if n >= SMALL_N:
        return None
    return (
        f"only {n} items: ECE and AUROC are not meaningful below {SMALL_N} "
        "(read the 95% intervals, and run more items)"
    )


def summarize(confidence: Sequence[float], correct: Sequence[bool]) -> dict[str, Any]:
    """All the metrics of one arm (tool or baseline) as a JSON-ready dict, with their 95% intervals."""
    _check(confidence, correct)
    n = len(correct)
    out: dict[str, Any] = {"n": n}
    for name, metric in METRICS.items():
        out[name] = _r(metric(confidence, correct)) if n else None
    if out["auroc"] is None:
        out["auroc"] = UNDEFINED_ONE_CLASS
    out["intervals"] = intervals(confidence, correct)
    note = small_sample_note(n)
    if note:
        out["note"] = note
    return out
