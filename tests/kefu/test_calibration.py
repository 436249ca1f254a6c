"""Calibrators and calibration metrics with known answers (kefu.calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kefu.calibration import (
    Calibrator,
    brier_score,
    calibration_report,
    expected_calibration_error,
    fit_calibrator,
    fold_count,
    negative_log_likelihood,
    reliability_bins,
    softmax,
)


def overconfident(n: int = 6000, classes: int = 5, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from true probabilities; the "classifier" reports them sharpened (logits × 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.2, size=(n, classes))
    true = softmax(logits)
    labels = np.array([rng.choice(classes, p=row) for row in true])
    return softmax(logits * sharpen), true, labels


def test_temperature_scaling_makes_an_overconfident_classifier_calibrated():
    reported, true, labels = overconfident()
    fit_part, test_part = slice(0, 3000), slice(3000, None)
    calibrator = fit_calibrator(reported[fit_part], labels[fit_part], "temperature")
    # sharpened by 3 → the fitted temperature undoes it
    assert calibrator.temperature == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(reported[test_part], labels[test_part])
    after = expected_calibration_error(calibrator.apply(reported[test_part]), labels[test_part])
    oracle = expected_calibration_error(true[test_part], labels[test_part])
    assert before > 0.15
    assert after < 0.04 and after < oracle + 0.02
    assert negative_log_likelihood(calibrator.apply(reported[test_part]), labels[test_part]) < negative_log_likelihood(
        reported[test_part], labels[test_part]
    )
    # the ranking (and so the predicted intent) is unchanged
    assert (calibrator.apply(reported).argmax(axis=1) == reported.argmax(axis=1)).all()


def test_isotonic_calibration_lowers_ece_and_rows_still_sum_to_one():
    reported, _, labels = overconfident(seed=1)
    calibrator = fit_calibrator(reported[:3000], labels[:3000], "isotonic")
    calibrated = calibrator.apply(reported[3000:])
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert expected_calibration_error(calibrated, labels[3000:]) < 0.05
    assert expected_calibration_error(reported[3000:], labels[3000:]) > 0.15
    again = Calibrator.from_dict(calibrator.to_dict()).apply(reported[3000:])
    assert np.allclose(again, calibrated)


def test_metrics_known_values():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    labels = np.array([0, 1, 0])
    # Brier: 0, (0.25+0.25), (0.64+0.64) → mean 1.78/3
    assert brier_score(probs, labels) == pytest.approx((0.0 + 0.5 + 1.28) / 3)
    assert negative_log_likelihood(probs, labels) == pytest.approx(-(math.log(1.0) + math.log(0.5) + math.log(0.2)) / 3)
    # perfectly calibrated buckets: every message at 0.8 confidence, 80 % right
    p = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(p, y) == pytest.approx(0.0)
    assert calibration_report(p, y)["accuracy"] == pytest.approx(0.8)
    bins = reliability_bins(p, y)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 10


def test_no_calibration_is_identity_and_bad_persisted_values_are_refused():
    probs = np.array([[0.7, 0.3]])
    assert np.allclose(fit_calibrator(probs, np.array([0]), "none").apply(probs), probs)
    with pytest.raises(ValueError, match="method"):
        Calibrator.from_dict({"method": "magic"})
    with pytest.raises(ValueError, match="temperature"):
        Calibrator.from_dict({"method": "temperature", "temperature": -1})
    with pytest.raises(ValueError, match="calibration"):
        fit_calibrator(probs, np.array([0]), "platt")


@pytest.mark.parametrize(
    ("counts", "examples", "expected"),
    [([10, 12, 30], 52, 5), ([3, 3, 40], 46, 3), ([1, 1, 1, 40], 43, 2), ([30000, 30000], 60000, 3),
     # SMP2019: five one-example intents among many well-populated ones keep k = 5
     ([1] * 5 + [20] * 40, 805, 5)],
)
def test_fold_count_follows_data_size(counts, examples, expected):
    assert fold_count(counts, examples) == expected
