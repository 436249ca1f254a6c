"""The learned half of the sentiment component and the policy that merges both halves.

The head is a logistic regression over the shared encoder's sentence vectors (no second
forward pass), reduced to numpy arrays so the Rasa model stores it without pickle.
The labelled set lives in data/sentiment/*.tsv (``label<TAB>text``), separate from the
NLU data because sentiment cuts across intents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.linear_model import LogisticRegression

from kefu.errors import BadInput
from kefu.sentiment.lexicon import LexiconResult

LABELS = ("negative", "neutral", "positive")
POLICIES = ("ensemble", "lexicon", "model")
MAX_UTTERANCE_CHARS = 1000
EXTREME = 0.9  # |score| that is strong without any intensity cue
INTENSITY_CUES = frozenset({"exclamation", "repeated_punctuation", "degree", "emoji", "threat", "insult"})


@dataclass
class LinearHead:
    """Softmax over ``features @ weight + bias``; binary sklearn models keep one column."""

    classes: List[str]
    weight: np.ndarray  # (dim, k) or (dim, 1) for two classes
    bias: np.ndarray  # (k,) or (1,)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = np.atleast_2d(features).astype(np.float32) @ self.weight + self.bias
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """p(positive) − p(negative) per row, in [-1, 1]."""
        proba = self.predict_proba(features)
        column = {c: i for i, c in enumerate(self.classes)}
        pos = proba[:, column["positive"]] if "positive" in column else 0.0
        neg = proba[:, column["negative"]] if "negative" in column else 0.0
        return np.asarray(pos - neg, dtype=np.float32)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"classes": np.asarray(self.classes, dtype=np.str_), "weight": self.weight, "bias": self.bias}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> LinearHead:
        classes = [str(c) for c in arrays["classes"]]
        weight = np.asarray(arrays["weight"], dtype=np.float32)
        bias = np.asarray(arrays["bias"], dtype=np.float32).reshape(-1)
        if weight.ndim != 2 or weight.shape[1] != bias.shape[0] or weight.shape[1] not in (1, len(classes)):
            raise BadInput("sentiment head: weight, bias and classes do not fit together")
        return cls(classes, weight, bias)


def fit_head(features: np.ndarray, labels: Sequence[str], c: float = 10.0, seed: int = 42) -> LinearHead:
    """Class-balanced, L2-regularised logistic regression (sklearn), kept as arrays."""
    if len(set(labels)) < 2:
        raise BadInput("the sentiment head needs at least two labels in its training data")
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    model.fit(np.asarray(features, dtype=np.float32), list(labels))
    return LinearHead(
        [str(c) for c in model.classes_], model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32)
    )


def load_labelled(directory: Path) -> List[Tuple[str, str]]:
    """(text, label) pairs from every ``*.tsv`` in `directory`; malformed lines are named."""
    directory = Path(directory)
    files = sorted(directory.glob("*.tsv")) if directory.is_dir() else []
    if not files:
        raise BadInput(f"{directory}: no labelled sentiment files (*.tsv)")
    pairs: List[Tuple[str, str]] = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: unreadable (expected UTF-8 text)") from exc
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            label, sep, text = line.partition("\t")
            text = text.strip()
            if not sep or label not in LABELS or not text:
                raise BadInput(f"{path}:{number}: expected '<{'|'.join(LABELS)}><TAB><text>'")
            if len(text) > MAX_UTTERANCE_CHARS:
                raise BadInput(f"{path}:{number}: utterance longer than {MAX_UTTERANCE_CHARS} characters")
            pairs.append((text, label))
    return pairs


def directory_digest(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and contents of the files under `paths` (for fingerprints)."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class Policy:
    """How the rules and the head become one label (defaults are the component's)."""

    name: str = "ensemble"
    model_weight: float = 0.6
    positive_threshold: float = 0.3
    negative_threshold: float = -0.3
    strong_threshold: float = 0.7

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise BadInput(f"sentiment policy must be one of {POLICIES}, got {self.name!r}")
        if not 0.0 <= self.model_weight <= 1.0:
            raise BadInput("sentiment model_weight must be in [0, 1]")
        if not -1.0 < self.negative_threshold <= 0.0 <= self.positive_threshold < 1.0:
            raise BadInput("sentiment thresholds must satisfy -1 < negative <= 0 <= positive < 1")
        if not 0.0 < self.strong_threshold <= 1.0:
            raise BadInput("sentiment strong_threshold must be in (0, 1]")

    def score(self, lexicon: LexiconResult, model_score: Optional[float]) -> float:
        """The merged score in [-1, 1]; the rules alone when there is no head."""
        if self.name == "lexicon" or model_score is None:
            score = lexicon.score
        elif self.name == "model" or not lexicon.hits:
            score = model_score
        else:
            score = self.model_weight * model_score + (1.0 - self.model_weight) * lexicon.score
        if lexicon.strong_cue and self.name != "model":
            score = min(score, lexicon.score)
        return float(min(1.0, max(-1.0, score)))

    def decide(self, lexicon: LexiconResult, model_score: Optional[float]) -> Dict[str, Any]:
        """The parse-result value: {label, score, intensity, signals}."""
        score = self.score(lexicon, model_score)
        signals = list(lexicon.signals) if self.name != "model" else []
        if model_score is not None and self.name != "lexicon":
            if model_score <= self.negative_threshold:
                signals.append("model_negative")
            elif model_score >= self.positive_threshold:
                signals.append("model_positive")
        if score <= self.negative_threshold:
            label = "negative"
        elif score >= self.positive_threshold:
            label = "positive"
        else:
            label = "neutral"
        cues = INTENSITY_CUES.intersection(lexicon.signals) if self.name != "model" else set()
        if label == "neutral":
            intensity = "none"
        elif label == "negative" and lexicon.strong_cue and self.name != "model":
            intensity = "strong"
        elif abs(score) >= EXTREME or (abs(score) >= self.strong_threshold and cues):
            # a confident plain complaint stays mild (one turn alone must not reach the senior
            # queue); it needs an intensity cue (！！, 非常, 😡 …) or an extreme score
            intensity = "strong"
        else:
            intensity = "mild"
        return {"label": label, "score": round(score, 4), "intensity": intensity, "signals": signals}
