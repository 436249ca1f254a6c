"""Calibrating intent probabilities, and measuring how well they are calibrated (no Rasa imports).

A classifier's top score is only worth routing on when "0.9" means "right nine times in
ten". The calibrators here are fitted on out-of-fold predictions of the training data
(never on test data): temperature scaling (one parameter, keeps the ranking, the default)
and isotonic regression on the top-1 score (more flexible, needs more data). Both reduce
to a few plain numbers so the classifier can persist them beside its head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

METHODS = ("temperature", "isotonic", "none")
ECE_BINS = 15
EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _log_probs(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probabilities, EPS, 1.0))


@dataclass
class Calibrator:
    """Maps a row of class probabilities to calibrated ones.

    temperature: softmax(log p / T); isotonic: the top-1 score through a monotone step
    function (x → y), the other classes rescaled so the row still sums to one.
    """

    method: str = "none"
    temperature: float = 1.0
    iso_x: Optional[List[float]] = None
    iso_y: Optional[List[float]] = None

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.method == "temperature":
            return softmax(_log_probs(probabilities) / self.temperature)
        if self.method == "isotonic" and self.iso_x:
            top = probabilities.argmax(axis=1)
            rows = np.arange(len(probabilities))
            old = probabilities[rows, top]
            classes = probabilities.shape[1]
            new = np.clip(np.interp(old, self.iso_x, self.iso_y), 1.0 / classes, 1.0)
            others = probabilities.copy()
            others[rows, top] = 0.0
            return self._fill(others, new, top)
        return probabilities

    @staticmethod
    def _fill(others: np.ndarray, new: np.ndarray, top: np.ndarray) -> np.ndarray:
        """Share 1 - new among the other classes in proportion, none above new (water-filling),
        so the calibrated row keeps its predicted intent."""
        rows = np.arange(len(others))
        cap = new * (1.0 - 1e-9)
        out = np.zeros_like(others)
        free = others > 0
        remaining = 1.0 - new
        for _ in range(others.shape[1]):
            weights = np.where(free, others, 0.0)
            total = weights.sum(axis=1)
            share = np.divide(remaining, total, out=np.zeros_like(total), where=total > 0)
            proposal = out + weights * share[:, None]
            over = free & (proposal > cap[:, None])
            if not over.any():
                out = proposal
                break
            out = np.where(over, cap[:, None], out)
            free &= ~over
            remaining = 1.0 - new - out.sum(axis=1)
        out[rows, top] = new
        # rows whose other classes were all zero keep their mass on the top class; normalise the rest
        return out / out.sum(axis=1, keepdims=True)

    def to_dict(self) -> Dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, "iso_x": self.iso_x, "iso_y": self.iso_y}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Calibrator:
        method = data.get("method", "none")
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}")
        temperature = float(data.get("temperature", 1.0))
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"calibration temperature must be positive, got {temperature!r}")
        return cls(method, temperature, data.get("iso_x"), data.get("iso_y"))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of softmax(log p / T) on (out-of-fold) predictions."""
    logp = _log_probs(np.asarray(probabilities, dtype=np.float64))
    labels = np.asarray(labels)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        scaled = logp / math.exp(log_t)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(norm - scaled[rows, labels]))

    result = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(result.x))


def fit_isotonic(probabilities: np.ndarray, labels: np.ndarray, max_points: int = 200) -> tuple[list, list]:
    """A monotone map from the top-1 score to the observed accuracy, kept to at most max_points knots."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    top = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top, correct)
    x, y = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    if len(x) > max_points:
        keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
        x, y = x[keep], y[keep]
    return [float(v) for v in x], [float(v) for v in y]


def fit_calibrator(probabilities: np.ndarray, labels: np.ndarray, method: str = "temperature") -> Calibrator:
    """Fit `method` on predictions whose true class indices are `labels`."""
    if method not in METHODS:
        raise ValueError(f"calibration must be one of {METHODS}, got {method!r}")
    if method == "none" or len(labels) == 0:
        return Calibrator()
    if method == "temperature":
        return Calibrator("temperature", fit_temperature(probabilities, labels))
    x, y = fit_isotonic(probabilities, labels)
    return Calibrator("isotonic", 1.0, x, y)


# --- measuring --------------------------------------------------------------------------


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width bins of the top-1 score (weighted |accuracy - confidence|)."""
    probabilities = np.asarray(probabilities)
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    index = np.minimum((top * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - top[mask].mean())
    return float(total / max(1, len(top)))


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over messages of the squared error summed over classes."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    onehot = np.zeros_like(probabilities)
    onehot[np.arange(len(labels)), np.asarray(labels)] = 1.0
    return float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    picked = probabilities[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(picked, EPS, 1.0))))


def calibration_report(probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    return {
        "ece": expected_calibration_error(probabilities, labels),
        "brier": brier_score(probabilities, labels),
        "nll": negative_log_likelihood(probabilities, labels),
        "accuracy": float(np.mean(np.asarray(probabilities).argmax(axis=1) == np.asarray(labels))),
    }


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> List[Dict[str, float]]:
    """Per bin: mean confidence, accuracy and count (what a reliability diagram draws)."""
    probabilities = np.asarray(probabilities)
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    index = np.minimum((top * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        out.append({
            "low": b / bins,
            "high": (b + 1) / bins,
            "count": int(mask.sum()),
            "confidence": float(top[mask].mean()) if mask.any() else float("nan"),
            "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
        })
    return out


def fold_count(label_counts: Sequence[int], examples: int) -> int:
    """k for k-fold: 5 normally, 3 for very large data, fewer when a quarter of the intents are rarer.

    A handful of one-example intents does not shrink k for everyone (their out-of-fold
    prediction is simply wrong, which is what a new intent with one example deserves).
    """
    if not label_counts:
        return 2
    typical_low = int(np.percentile(np.asarray(label_counts), 25))
    k = 3 if examples > 20000 else 5
    return max(2, min(k, typical_low))
