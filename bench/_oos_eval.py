"""Held-out-intent tasks, OOS metrics and the two detectors for bench/oos.py.

A task hides 25 % of a dataset's intents (random.Random(seed) over the sorted training
labels): the models train on the other 75 % (their training examples only) and are scored
on the full test split, where messages of hidden intents are out of scope (positive class).
Nothing here looks at a test label except to measure.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from _intent_calibration import FeatureCache
from _intent_data import Example, Split
from _intent_rasa import run, variants
from sklearn.metrics import roc_auc_score

from kefu.intent_head import HeadOptions, train_intent_model
from kefu.thresholds import Targets

KNOWN_SHARE = 0.75
IN_SCOPE_RECALL = 0.95  # FPR@95: threshold keeps this share of in-scope test messages
OOS_RECALL = 0.60  # accuracy@60: threshold flags this share of out-of-scope test messages


@dataclass
class Task:
    dataset: str
    language: str
    seed: int
    known: List[str]
    hidden: List[str]
    train: List[Example]  # training examples of the known intents
    test: List[Example]  # the full test split

    @property
    def is_oos(self) -> np.ndarray:
        known = set(self.known)
        return np.array([intent not in known for _, intent in self.test])

    def split(self) -> Split:
        return Split(self.dataset, self.language, self.train, self.test, seed=self.seed)

    def describe(self) -> Dict[str, Any]:
        oos = self.is_oos
        hidden_in_test = sorted({i for _, i in self.test} & set(self.hidden))
        return {"seed": self.seed, "known": self.known, "hidden": self.hidden, "n_train": len(self.train),
                "n_test_in_scope": int((~oos).sum()), "n_test_oos": int(oos.sum()),
                "hidden_with_test_messages": len(hidden_in_test)}


def make_task(split: Split, seed: int, share: float = KNOWN_SHARE) -> Task:
    names = sorted({intent for _, intent in split.train})
    known = sorted(random.Random(seed).sample(names, round(share * len(names))))
    hidden = sorted(set(names) - set(known))
    keep = set(known)
    train = [(t, i) for t, i in split.train if i in keep]
    return Task(split.dataset, split.language, seed, known, hidden, train, list(split.test))


# --- metrics ----------------------------------------------------------------------------------


def keep_threshold(scores: np.ndarray, share: float) -> float:
    """Smallest observed t with mean(scores <= t) >= share (messages above t are flagged)."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), share, method="inverted_cdf"))


def flag_threshold(scores: np.ndarray, share: float) -> float:
    """Largest observed t with mean(scores > t) >= share; below every score if ties prevent it."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    below = np.searchsorted(s, s, side="right") / len(s)  # share NOT flagged at t = s[j]
    ok = below <= 1.0 - share + 1e-12
    return float(s[ok].max()) if ok.any() else float(np.nextafter(s[0], -np.inf))


def metrics(score: np.ndarray, is_oos: np.ndarray, correct: np.ndarray, fixed: Optional[float]) -> Dict[str, float]:
    """OOS = positive class; a message is flagged when score > threshold."""
    score = np.asarray(score, dtype=np.float64)
    ins, oos = score[~is_oos], score[is_oos]
    ok = np.asarray(correct, dtype=bool)[~is_oos]
    t95 = keep_threshold(ins, IN_SCOPE_RECALL)
    t60 = flag_threshold(oos, OOS_RECALL)
    accepted = ins <= t60
    out = {
        "auroc": float(roc_auc_score(is_oos, score)),
        "fpr_at_95": float(np.mean(oos <= t95)),
        "in_scope_recall_at_95": float(np.mean(ins <= t95)),
        "threshold_at_95": t95,
        "oos_recall_at_60": float(np.mean(oos > t60)),
        "in_scope_accuracy_at_60": float(np.mean(ok & accepted)),
        "accepted_accuracy_at_60": float(ok[accepted].mean()) if accepted.any() else math.nan,
        "accepted_share_at_60": float(accepted.mean()),
        "threshold_at_60": t60,
        "closed_set_accuracy": float(ok.mean()),
    }
    if fixed is not None:
        out.update({"fixed_threshold": float(fixed), "fixed_in_scope_recall": float(np.mean(ins <= fixed)),
                    "fixed_oos_recall": float(np.mean(oos > fixed)),
                    "fixed_in_scope_accuracy": float(np.mean(ok & (ins <= fixed)))})
    return out


# --- our detector -------------------------------------------------------------------------------


OURS = ("combined", "distance", "unconfidence")


def run_ours(task: Task, features: FeatureCache) -> Dict[str, Any]:
    """Train kefu.intent_head on the known intents; score every test message three ways."""
    train = list(dict.fromkeys(task.train))  # Rasa keeps one copy of a repeated (text, intent)
    options = HeadOptions(**{**features.settings.head, "out_of_scope": True})
    started = time.perf_counter()
    x_train = features.train_features([t for t, _ in train])
    model = train_intent_model(x_train, [i for _, i in train], options, Targets())
    train_s = time.perf_counter() - started
    if model.oos is None:
        raise RuntimeError("train_intent_model fitted no out-of-scope scorer")
    x_test = features.features([t for t, _ in task.test])
    probabilities, combined = model.predict(x_test)
    assert combined is not None
    predicted = [model.head.classes[j] for j in probabilities.argmax(axis=1)]
    correct = np.array([p == gold for p, (_, gold) in zip(predicted, task.test, strict=True)])
    oos = model.oos
    recall = oos.in_scope_recall
    scores = {"combined": combined, "distance": oos.distances.distance(x_test),
              "unconfidence": 1.0 - probabilities.max(axis=1)}
    # the shipped threshold for the combined score; for the single signals the same in-scope
    # recall quantile of their out-of-fold training distributions (kept as 512 quantiles)
    fixed = {"combined": float(oos.threshold), "distance": float(np.quantile(oos.distance_ref, recall)),
             "unconfidence": float(np.quantile(oos.unconfidence_ref, recall))}
    is_oos = task.is_oos
    return {"train_s": train_s, "folds": model.plan["calibration"]["folds"],
            "temperature": model.plan["calibration"].get("temperature"),
            "results": {key: metrics(scores[key], is_oos, correct, fixed[key]) for key in OURS}}


# --- baseline: stock Rasa DIET + FallbackClassifier rule ------------------------------------------------


def run_diet(task: Task, epochs: int, workdir: Path, fallback_threshold: float) -> Dict[str, Any]:
    """Stock DIET pipeline through real Rasa (bench/_intent_rasa.run); score = 1 - DIET's confidence.

    FallbackClassifier predicts nlu_fallback when the top confidence is below its threshold,
    i.e. it flags score > 1 - threshold.
    """
    variant = variants(["stock"], epochs)[0]
    result = run(task.split(), variant, workdir, latency_samples=500)
    score = 1.0 - result.confidences
    fixed = 1.0 - fallback_threshold  # confidence < threshold <=> flagged
    return {"train_s": result.train_s, "n_train": result.n_train, "duplicates": result.duplicates,
            "dropped": result.dropped, "parse_p50_ms": result.p50_ms,
            "results": {"diet": metrics(score, task.is_oos, result.correct, fixed)}}
