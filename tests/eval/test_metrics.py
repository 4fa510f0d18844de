"""The metric functions against hand-computed cases, and against scikit-learn as a reference."""

from __future__ import annotations

import random

import pytest

from reasonkit.eval import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn: pip install 'reasonkit[eval]'")


def test_hand_computed_small_case():
    confidence = [0.9, 0.8, 0.3, 0.2]
    correct = [True, False, True, False]
    # Brier: (0.01 + 0.64 + 0.49 + 0.04) / 4
    assert metrics.brier(confidence, correct) == pytest.approx(0.295)
    # AUROC: pairs (correct, wrong): (0.9>0.8) (0.9>0.2) (0.3<0.8) (0.3>0.2) -> 3/4
    assert metrics.auroc(confidence, correct) == pytest.approx(0.75)
    # equal-width, 15 bins: each value in its own bin -> mean |acc - conf| = (0.1+0.8+0.7+0.2)/4
    assert metrics.ece_equal_width(confidence, correct) == pytest.approx(0.45)
    # equal-mass with 2 bins: {0.2, 0.3} acc 0.5 conf 0.25; {0.8, 0.9} acc 0.5 conf 0.85
    assert metrics.ece_equal_mass(confidence, correct, bins=2) == pytest.approx(0.5 * 0.25 + 0.5 * 0.35)
    # the two most confident: one right; the ceil(0.8*4)=4 most confident: two right
    assert metrics.selective_accuracy(confidence, correct, 0.5) == pytest.approx(0.5)
    assert metrics.selective_accuracy(confidence, correct, 0.8) == pytest.approx(0.5)


def test_ties_count_half_and_one_class_is_undefined():
    assert metrics.auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert metrics.auroc([0.7, 0.2], [True, True]) is None
    summary = metrics.summarize([0.7, 0.2], [True, True])
    assert summary["auroc"] == metrics.UNDEFINED_ONE_CLASS
    assert summary["accuracy"] == 1.0


def test_perfectly_calibrated_bins_have_zero_ece():
    confidence = [0.25] * 4 + [0.75] * 4
    correct = [True, False, False, False, True, True, True, False]
    assert metrics.ece_equal_width(confidence, correct) == pytest.approx(0.0)
    assert metrics.ece_equal_mass(confidence, correct, bins=2) == pytest.approx(0.0)


def test_one_is_in_the_last_equal_width_bin_and_mass_bins_differ_by_at_most_one():
    bins = metrics.equal_width_bins([0.0, 1.0, 14 / 15])
    assert bins[0] == [0] and bins[14] == [1, 2]
    sizes = [len(g) for g in metrics.equal_mass_bins([i / 37 for i in range(37)])]
    assert len(sizes) == 15 and sum(sizes) == 37 and max(sizes) - min(sizes) <= 1
    assert len(metrics.equal_mass_bins([0.1, 0.2, 0.3])) == 3  # fewer items than bins


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brier_and_auroc_match_scikit_learn(seed):
    rng = random.Random(seed)
    confidence = [round(rng.random(), 2) for _ in range(200)]  # rounded: many ties
    correct = [rng.random() < c for c in confidence]
    assert metrics.brier(confidence, correct) == pytest.approx(
        sklearn_metrics.brier_score_loss(correct, confidence)
    )
    assert metrics.auroc(confidence, correct) == pytest.approx(
        sklearn_metrics.roc_auc_score(correct, confidence)
    )


def test_equal_width_ece_matches_a_direct_computation():
    rng = random.Random(7)
    confidence = [rng.random() for _ in range(300)]
    correct = [rng.random() < c * c for c in confidence]
    expected = 0.0
    for k in range(15):
        group = [i for i, c in enumerate(confidence) if k / 15 <= c < (k + 1) / 15]
        if group:
            acc = sum(correct[i] for i in group) / len(group)
            conf = sum(confidence[i] for i in group) / len(group)
            expected += len(group) / 300 * abs(acc - conf)
    assert metrics.ece_equal_width(confidence, correct) == pytest.approx(expected)
    assert metrics.ece_equal_width(confidence, correct) > 0.05  # over-confident by construction


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        metrics.brier([0.1], [True, False])
