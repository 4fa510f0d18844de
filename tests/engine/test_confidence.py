import pytest

from reasonkit.engine import confidence as conf
from reasonkit.protocol.models import Signal


def total(factors):
    return sum(f.delta for f in factors)


def test_step_penalties_add_up():
    value, factors = conf.step_confidence(
        0.9, repaired=True, truncated=True, items=6, min_items=10, agreement=0.5, samples=3
    )
    expected = 0.9 - 0.10 - 0.05 - 0.20 * 0.4 - 0.30 * 0.5
    assert value == pytest.approx(expected)
    assert [f.signal for f in factors] == [
        "model",
        "repaired",
        "truncated",
        "too_few_items",
        "sample_disagreement",
    ]
    assert total(factors) == pytest.approx(value)


def test_missing_confidence_and_clamp():
    value, factors = conf.step_confidence(None, degraded=True)
    assert value == pytest.approx(0.25)
    value, factors = conf.step_confidence(0.1, degraded=True)
    assert value == 0.0 and factors[-1].signal == "clamp" and total(factors) == pytest.approx(0.0)


def test_weighted_mean_with_contradiction_penalty():
    factors = conf.weighted([("a", 1, 0.9), ("b", 3, 0.5)], 0.5, "steps")
    mean = (0.9 + 1.5) / 4
    sd = ((0.9 - mean) ** 2 * 1 / 4 + (0.5 - mean) ** 2 * 3 / 4) ** 0.5
    assert factors[0].delta == pytest.approx(mean)
    assert factors[1].signal == "contradiction" and factors[1].delta == pytest.approx(-0.5 * sd)
    assert conf.weighted([("a", 1, 0.7), ("b", 1, 0.7)], 0.5, "x")[-1].signal == "weighted_mean"


def test_signals_map_count_and_cap():
    signals = [
        Signal(kind="map", step="tri", field="grade", values={"LOW": -0.1}, cap={"FLAG": 0.4, "LOW": 0.6}),
        Signal(kind="count", step="fal", field="fallacies", per_item=-0.05, max_total=-0.12),
    ]
    outputs = {"tri": {"grade": "LOW"}, "fal": {"fallacies": ["a", "b", "c", "d"]}}
    factors = conf.apply_signals(signals, outputs, [conf.Factor(signal="weighted_mean", delta=0.9)])
    # 0.9 - 0.1 - 0.12 = 0.68, then capped at 0.6
    assert [f.signal for f in factors] == ["weighted_mean", "tri.grade", "fal.fallacies", "cap"]
    assert total(factors) == pytest.approx(0.6)
    flagged = conf.apply_signals(
        signals, {"tri": {"grade": "FLAG"}}, [conf.Factor(signal="weighted_mean", delta=0.9)]
    )
    assert total(flagged) == pytest.approx(0.4)


def test_sample_agreement():
    outs = [{"verdict": "pass"}, {"verdict": "fail"}, {"verdict": "pass"}]
    agreement, best = conf.sample_agreement(outs, [0.6, 0.9, 0.8], "verdict")
    assert agreement == pytest.approx(2 / 3) and best == 2
    agreement, best = conf.sample_agreement([{}, {}, {}], [0.5, 0.9, 0.7], None)
    assert agreement == pytest.approx(0.6) and best == 2
