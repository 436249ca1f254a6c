"""The intent model behind BertIntentClassifier, Rasa-free so benchmarks run the very same code.

`train_intent_model` fits the head on all training data and, from k-fold out-of-fold
predictions of that same data (no test data), a calibrator, the routing threshold plan
and the out-of-scope scorer. `IntentModel.save/load` write numpy arrays + one JSON file.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier

from kefu.calibration import Calibrator, calibration_report, fit_calibrator, fold_count, softmax
from kefu.oos import DistanceModel, OutOfScopeScorer
from kefu.thresholds import PLAN_FILE, Targets, choose_thresholds, json_safe

log = logging.getLogger(__name__)

WEIGHTS_FILE = "head.npz"
OUT_OF_SCOPE_INTENTS = frozenset({"out_of_scope"})


class Head:
    """A fitted classifier head reduced to arrays: linear layers with ReLU between."""

    def __init__(self, classes: List[str], weights: List[np.ndarray], biases: List[np.ndarray]) -> None:
        self.classes = classes
        self.weights = weights
        self.biases = biases

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        hidden = features
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            hidden = hidden @ w + b
            if i < len(self.weights) - 1:
                hidden = np.maximum(hidden, 0.0)
        if hidden.shape[1] == 1:  # sklearn's binary case: one logit for classes[1]
            hidden = np.hstack([-hidden, hidden]) / 2.0
        return softmax(hidden)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        arrays: Dict[str, np.ndarray] = {"classes": np.asarray(self.classes, dtype=np.str_)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> Head:
        layers = sum(1 for key in arrays if key[0] == "w" and key[1:].isdigit())
        return cls(
            [str(c) for c in arrays["classes"]],
            [arrays[f"w{i}"] for i in range(layers)],
            [arrays[f"b{i}"] for i in range(layers)],
        )


@dataclass(frozen=True)
class HeadOptions:
    head: str = "logistic_regression"
    C: float = 100.0
    hidden_layers: Sequence[int] = (256,)
    max_iter: int = 1000
    random_seed: int = 42
    calibration: str = "temperature"  # temperature | isotonic | none
    folds: Optional[int] = None  # None: kefu.calibration.fold_count
    out_of_scope: bool = True
    oos_in_scope_recall: float = 0.95


def fit_head(features: np.ndarray, labels: Sequence[str], options: HeadOptions) -> Head:
    if options.head == "mlp":
        mlp = MLPClassifier(
            hidden_layer_sizes=tuple(options.hidden_layers),
            max_iter=options.max_iter,
            early_stopping=len(labels) >= 200,
            random_state=options.random_seed,
        ).fit(features, labels)
        return Head(list(mlp.classes_), list(mlp.coefs_), list(mlp.intercepts_))
    lr = LogisticRegression(
        C=options.C, max_iter=options.max_iter, class_weight="balanced", random_state=options.random_seed
    ).fit(features, labels)
    return Head(list(lr.classes_), [lr.coef_.T.astype(np.float32)], [lr.intercept_.astype(np.float32)])


@dataclass
class IntentModel:
    head: Head
    calibrator: Calibrator = field(default_factory=Calibrator)
    plan: Dict[str, Any] = field(default_factory=dict)
    oos: Optional[OutOfScopeScorer] = None

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Calibrated probabilities (columns: head.classes) and out-of-scope scores (or None)."""
        probabilities = self.calibrator.apply(self.head.predict_proba(features))
        scores = self.oos.score(features, probabilities.max(axis=1)) if self.oos is not None else None
        return probabilities, scores

    def save(self, directory: Path) -> None:
        arrays = self.head.to_arrays()
        if self.oos is not None:
            arrays.update(self.oos.to_arrays())
        np.savez(Path(directory) / WEIGHTS_FILE, **arrays)
        plan = json.dumps(json_safe(self.plan), ensure_ascii=False, indent=1, allow_nan=False)
        (Path(directory) / PLAN_FILE).write_text(plan, "utf-8")

    @classmethod
    def load(cls, directory: Path) -> IntentModel:
        """Raises FileNotFoundError / ValueError / OSError when the directory holds no valid model."""
        with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        plan_path = Path(directory) / PLAN_FILE
        plan = json.loads(plan_path.read_text("utf-8")) if plan_path.exists() else {}
        calibrator = Calibrator.from_dict(plan.get("calibration") or {})
        oos = OutOfScopeScorer.from_arrays(arrays, plan["oos"]) if plan.get("oos") else None
        return cls(Head.from_arrays(arrays), calibrator, plan, oos)


def out_of_fold(
    features: np.ndarray, labels: Sequence[str], options: HeadOptions, classes: List[str], folds: int,
    with_distance: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (columns: classes) and nearest-centroid distances."""
    labels_arr = np.asarray(labels, dtype=object)
    probabilities = np.zeros((len(labels_arr), len(classes)))
    distances = np.zeros(len(labels_arr))
    column = {name: i for i, name in enumerate(classes)}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=options.random_seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(splitter.split(features, labels_arr))
    for train_idx, held_idx in splits:
        head = fit_head(features[train_idx], list(labels_arr[train_idx]), options)
        fold_probs = head.predict_proba(features[held_idx])
        for j, name in enumerate(head.classes):
            probabilities[held_idx, column[name]] = fold_probs[:, j]
        if with_distance:
            in_scope = [n for n in labels_arr[train_idx] if n not in OUT_OF_SCOPE_INTENTS]
            if in_scope:
                model = DistanceModel.fit(features[train_idx], labels_arr[train_idx], OUT_OF_SCOPE_INTENTS)
                distances[held_idx] = model.distance(features[held_idx])
    return probabilities, distances


def train_intent_model(
    features: np.ndarray,
    labels: Sequence[str],
    options: HeadOptions,
    targets: Optional[Targets] = None,
    data: Optional[Dict[str, Any]] = None,
) -> IntentModel:
    """Head on all data; calibrator, thresholds and out-of-scope scorer from out-of-fold predictions."""
    features = np.asarray(features, dtype=np.float32)
    labels = list(labels)
    started = time.perf_counter()
    head = fit_head(features, labels, options)
    counts = [labels.count(name) for name in head.classes]
    if options.calibration == "none" and not options.out_of_scope and targets is None:
        return IntentModel(head, plan={"calibration": {"method": "none"}})
    folds = options.folds or fold_count(counts, len(labels))
    oof, distances = out_of_fold(features, labels, options, head.classes, folds, options.out_of_scope)
    truth = np.asarray([head.classes.index(name) for name in labels])
    calibrator = fit_calibrator(oof, truth, options.calibration)
    calibrated = calibrator.apply(oof)
    plan: Dict[str, Any] = {
        "version": 1,
        "calibration": {
            **calibrator.to_dict(),
            "folds": folds,
            "examples": len(labels),
            "intents": len(head.classes),
            "before": calibration_report(oof, truth),
            "after": calibration_report(calibrated, truth),
        },
    }
    confidence = calibrated.max(axis=1)
    predicted = [head.classes[i] for i in calibrated.argmax(axis=1)]
    correct = calibrated.argmax(axis=1) == truth
    summary = {"examples": len(labels), "intents": len(head.classes), "folds": folds, **(data or {})}
    plan["thresholds"] = choose_thresholds(confidence, correct, predicted, targets or Targets(), summary)
    oos = None
    in_scope = np.asarray([name not in OUT_OF_SCOPE_INTENTS for name in labels])
    if options.out_of_scope and in_scope.sum() >= 2 and len(set(np.asarray(labels)[in_scope])) >= 1:
        oos = OutOfScopeScorer.fit(
            features[in_scope], list(np.asarray(labels, dtype=object)[in_scope]), distances[in_scope],
            confidence[in_scope], options.oos_in_scope_recall, OUT_OF_SCOPE_INTENTS,
        )
        plan["oos"] = oos.summary()
    plan["train_seconds"] = round(time.perf_counter() - started, 3)
    return IntentModel(head, calibrator, plan, oos)


def rank(model: IntentModel, features: np.ndarray) -> Iterable[tuple[List[Dict[str, Any]], Optional[float]]]:
    """Per message: the calibrated intent ranking (best first) and the out-of-scope score."""
    probabilities, scores = model.predict(features)
    for i, row in enumerate(probabilities):
        order = np.argsort(-row)
        ranking = [{"name": model.head.classes[j], "confidence": float(row[j])} for j in order]
        yield ranking, (float(scores[i]) if scores is not None else None)
