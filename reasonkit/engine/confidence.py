"""Confidence arithmetic. Every function returns the value and the breakdown that produced it; the
deltas of a breakdown add up to the value (a final "clamp" factor keeps it in 0..1).

Per step: the model's own `confidence` (0.5 when it gave none), then engine-checked penalties.
Per protocol / profile: weighted mean of the parts, minus `contradiction_penalty` x the weighted
standard deviation of the parts (parts that disagree lower confidence), plus tool signals.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from reasonkit.engine.result import Factor
from reasonkit.protocol.models import Signal

__all__ = [
    "DEGRADED",
    "DISAGREEMENT",
    "MIN_ITEMS_MAX",
    "NO_CONFIDENCE",
    "REPAIRED",
    "TRUNCATED",
    "apply_signals",
    "finish",
    "sample_agreement",
    "step_confidence",
    "weighted",
]

REPAIRED = -0.10  # the reply needed a repair call to match its schema
DEGRADED = -0.25  # still invalid after the repair; invalid fields were dropped
TRUNCATED = -0.05  # the reply hit max_tokens
MIN_ITEMS_MAX = -0.20  # fewer list items than min_items, scaled by the shortfall
DISAGREEMENT = -0.30  # samples disagreeing, scaled by (1 - agreement)
NO_CONFIDENCE = 0.5  # assumed when the model gave no usable confidence


def finish(factors: list[Factor]) -> tuple[float, list[Factor]]:
    raw = sum(f.delta for f in factors)
    value = min(1.0, max(0.0, raw))
    if abs(value - raw) > 1e-12:
        factors.append(Factor(signal="clamp", delta=value - raw, detail="kept within 0..1"))
    return value, factors


def step_confidence(
    model_confidence: float | None,
    *,
    repaired: bool = False,
    degraded: bool = False,
    truncated: bool = False,
    items: int | None = None,
    min_items: int | None = None,
    agreement: float | None = None,
    samples: int = 1,
) -> tuple[float, list[Factor]]:
    if model_confidence is None:
        factors = [
            Factor(
                signal="model", delta=NO_CONFIDENCE, detail="the model gave no usable confidence; 0.5 assumed"
            )
        ]
    else:
        factors = [Factor(signal="model", delta=model_confidence, detail="the model's own confidence")]
    if degraded:
        factors.append(
            Factor(
                signal="invalid_output",
                delta=DEGRADED,
                detail="output did not match its schema even after a repair call",
            )
        )
    elif repaired:
        factors.append(
            Factor(
                signal="repaired", delta=REPAIRED, detail="output needed a repair call to match its schema"
            )
        )
    if truncated:
        factors.append(
            Factor(signal="truncated", delta=TRUNCATED, detail="the reply hit the max_tokens limit")
        )
    if min_items and items is not None and items < min_items:
        short = (min_items - items) / min_items
        factors.append(
            Factor(
                signal="too_few_items",
                delta=MIN_ITEMS_MAX * short,
                detail=f"{items} items, at least {min_items} expected",
            )
        )
    if agreement is not None and samples > 1 and agreement < 1.0:
        factors.append(
            Factor(
                signal="sample_disagreement",
                delta=DISAGREEMENT * (1 - agreement),
                detail=f"{samples} samples, agreement {agreement:.2f}",
            )
        )
    return finish(factors)


def sample_agreement(
    outputs: list[dict[str, Any]], confidences: list[float], agree_on: str | None
) -> tuple[float, int]:
    """(agreement in 0..1, index of the representative sample).

    With `agree_on`: share of samples whose value equals the majority value; the representative is
    the most confident sample among the majority. Without: 1 - (max - min) of the confidences and
    the sample closest to their median."""
    n = len(outputs)
    if n <= 1:
        return 1.0, 0
    if agree_on:
        keys = [repr(o.get(agree_on)) for o in outputs]
        majority, count = Counter(keys).most_common(1)[0]
        best = max((i for i in range(n) if keys[i] == majority), key=lambda i: confidences[i])
        return count / n, best
    spread = max(confidences) - min(confidences)
    median = sorted(confidences)[n // 2]
    best = min(range(n), key=lambda i: abs(confidences[i] - median))
    return max(0.0, 1.0 - spread), best


def weighted(parts: list[tuple[str, float, float]], contradiction_penalty: float, what: str) -> list[Factor]:
    """parts: (name, weight, confidence). Returns the base factors (mean + contradiction)."""
    total_w = sum(w for _, w, _ in parts)
    if total_w <= 0:
        return [Factor(signal="weighted_mean", delta=0.0, detail=f"no {what} finished")]
    mean = sum(w * c for _, w, c in parts) / total_w
    detail = ", ".join(f"{n} {c:.2f}x{w:g}" for n, w, c in parts)
    factors = [Factor(signal="weighted_mean", delta=mean, detail=f"{what}: {detail}")]
    if len(parts) > 1 and contradiction_penalty > 0:
        var = sum(w * (c - mean) ** 2 for _, w, c in parts) / total_w
        sd = math.sqrt(var)
        if sd > 1e-9:
            factors.append(
                Factor(
                    signal="contradiction",
                    delta=-contradiction_penalty * sd,
                    detail=f"{what} disagree: weighted std-dev {sd:.3f} x {contradiction_penalty:g}",
                )
            )
    return factors


def apply_signals(signals: list[Signal], outputs: dict[str, Any], factors: list[Factor]) -> list[Factor]:
    caps: list[tuple[float, str]] = []
    for sig in signals:
        out = outputs.get(sig.step)
        if not isinstance(out, dict) or sig.field not in out:
            continue
        value = out[sig.field]
        label = sig.label or f"{sig.step}.{sig.field}"
        if sig.kind == "map":
            key = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if key in sig.values and sig.values[key] != 0:
                factors.append(Factor(signal=label, delta=sig.values[key], detail=f"{sig.field} = {key}"))
            if key in sig.cap:
                caps.append(
                    (sig.cap[key], f"{label}: {sig.field} = {key} caps confidence at {sig.cap[key]:g}")
                )
        elif isinstance(value, list) and value:
            delta = max(sig.max_total, len(value) * sig.per_item)
            if delta != 0:
                factors.append(
                    Factor(
                        signal=label,
                        delta=delta,
                        detail=f"{len(value)} x {sig.per_item:g} (floor {sig.max_total:g})",
                    )
                )
    for cap, detail in sorted(caps):
        current = sum(f.delta for f in factors)
        if current > cap:
            factors.append(Factor(signal="cap", delta=cap - current, detail=detail))
    return factors
