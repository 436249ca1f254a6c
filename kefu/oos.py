"""Out-of-scope detection without out-of-scope training examples (no Rasa imports).

A message far from every trained intent in the encoder's feature space is likely about
something the assistant was never taught, even when the classifier, forced to choose,
gives one intent a high probability. The score combines two signals, each turned into
"how unusual for in-scope training data" by its out-of-fold distribution:

- the Mahalanobis distance to the nearest intent centroid (shared covariance with
  Ledoit-Wolf shrinkage, so ten examples per intent still give a usable estimate);
- one minus the calibrated top-1 confidence.

The mean of the two ranks is the score (0 = typical, 1 = more unusual than any in-scope
out-of-fold message); `threshold` is its quantile at the configured in-scope recall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
from sklearn.covariance import LedoitWolf

QUANTILES = 512


def _normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.clip(norms, 1e-12, None)


@dataclass
class DistanceModel:
    """Whitening transform + whitened intent centroids: distance = nearest centroid, squared."""

    transform: np.ndarray
    centroids: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: Iterable[str], exclude: Iterable[str] = ()) -> DistanceModel:
        x = _normalise(features)
        labels = np.asarray(list(labels), dtype=object)
        names = [n for n in sorted(set(labels)) if n not in set(exclude)]
        if not names:
            raise ValueError("out-of-scope detection needs at least one in-scope intent")
        centroids = np.vstack([x[labels == n].mean(axis=0) for n in names])
        keep = np.isin(labels, names)
        residuals = x[keep] - centroids[np.searchsorted(names, labels[keep])]
        covariance = LedoitWolf().fit(residuals).covariance_
        # precision = L L^T: distances become Euclidean after x @ L
        values, vectors = np.linalg.eigh(covariance)
        transform = vectors / np.sqrt(np.clip(values, 1e-9, None))
        return cls(transform.astype(np.float32), (centroids @ transform).astype(np.float32))

    def distance(self, features: np.ndarray) -> np.ndarray:
        z = _normalise(features) @ self.transform
        squared = (z**2).sum(axis=1, keepdims=True) - 2.0 * z @ self.centroids.T + (self.centroids**2).sum(axis=1)
        return np.sqrt(np.clip(squared.min(axis=1), 0.0, None))


def _quantiles(values: np.ndarray) -> np.ndarray:
    values = np.sort(np.asarray(values, dtype=np.float64))
    if len(values) <= QUANTILES:
        return values
    return np.quantile(values, np.linspace(0.0, 1.0, QUANTILES))


def _rank(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fraction of the in-scope reference below each value (its empirical CDF)."""
    return np.searchsorted(reference, values, side="right") / max(1, len(reference))


@dataclass
class OutOfScopeScorer:
    distances: DistanceModel
    distance_ref: np.ndarray  # sorted out-of-fold in-scope distances (quantiles)
    unconfidence_ref: np.ndarray  # sorted out-of-fold in-scope 1 - confidence (quantiles)
    threshold: float
    in_scope_recall: float

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: List[str],
        oof_distance: np.ndarray,
        oof_confidence: np.ndarray,
        in_scope_recall: float = 0.95,
        exclude: Iterable[str] = (),
    ) -> OutOfScopeScorer:
        """Fit on all training data; the reference distributions come from out-of-fold values."""
        distance_ref = _quantiles(oof_distance)
        unconfidence_ref = _quantiles(1.0 - np.asarray(oof_confidence))
        scorer = cls(DistanceModel.fit(features, labels, exclude), distance_ref, unconfidence_ref, 1.0, in_scope_recall)
        combined = scorer.combine(np.asarray(oof_distance), np.asarray(oof_confidence))
        scorer.threshold = float(np.quantile(combined, in_scope_recall)) if len(combined) else 1.0
        return scorer

    def combine(self, distance: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        return 0.5 * (_rank(self.distance_ref, distance) + _rank(self.unconfidence_ref, 1.0 - np.asarray(confidence)))

    def score(self, features: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        return self.combine(self.distances.distance(features), confidence)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {
            "oos_transform": self.distances.transform,
            "oos_centroids": self.distances.centroids,
            "oos_distance_ref": self.distance_ref,
            "oos_unconfidence_ref": self.unconfidence_ref,
        }

    def summary(self) -> Dict[str, Any]:
        return {"method": "mahalanobis", "threshold": self.threshold, "in_scope_recall": self.in_scope_recall}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], summary: Dict[str, Any]) -> Optional[OutOfScopeScorer]:
        if "oos_transform" not in arrays:
            return None
        return cls(
            DistanceModel(arrays["oos_transform"], arrays["oos_centroids"]),
            arrays["oos_distance_ref"],
            arrays["oos_unconfidence_ref"],
            float(summary["threshold"]),
            float(summary["in_scope_recall"]),
        )
