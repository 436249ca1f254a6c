"""Calibrated FAQ answer confidence: P(the top hit answers the question), per language, and the
explicit "no answer" decision built on it.

The raw hybrid score (`knowledge.search.confidence`) was one logistic curve for both languages:
Chinese right answers scored 0.23–0.47 and English wrong ones 0.7–0.9 (issue 18). Here each
language has its own logistic regression over a few features of the ranked hits, fitted
out-of-fold by `kefu kb calibrate` (knowledge/calibration_fit.py) and shipped as plain JSON
(`data/knowledge/faq_calibration.json`, no pickle). Each language also carries the threshold
chosen out-of-fold for a wrong-answer rate of at most 5 %; below it the search abstains.

A missing, corrupt or oversized file is logged once and the store falls back to the raw score
with the old fixed threshold (`RAW_THRESHOLD`), exactly today's behaviour.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from kefu.config import PROJECT_ROOT
from knowledge.errors import BadInput
from knowledge.search import SIGNALS, Hit

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION = PROJECT_ROOT / "data" / "knowledge" / "faq_calibration.json"
MAX_FILE_BYTES = 64 * 1024  # a calibrator is a few hundred bytes; anything bigger is not one
FORMAT = "kefu-faq-calibration/1"
FEATURES = ("vector", "margin", "trgm", "fts", "agree")
LANGUAGES = ("zh", "en")
RAW_THRESHOLD = 0.5  # the fixed threshold on the raw score used before (and when no calibrator loads)
MARGIN_CAP = 0.3


def feature_row(top: Hit, runner_up: Optional[Hit]) -> list[float]:
    """The top hit's features, in `FEATURES` order: cosine, cosine margin to the runner-up entry
    (capped), trigram and full-text overlap, and how many signals rank it first."""
    vec = top.scores.get("vector", 0.0)
    margin = vec - (runner_up.scores.get("vector", 0.0) if runner_up else 0.0)
    return [
        float(vec),
        max(min(float(margin), MARGIN_CAP), 0.0),
        float(top.scores.get("trgm", 0.0)),
        min(float(top.scores.get("fts", 0.0)), 1.0),
        float(sum(1 for s in SIGNALS if top.ranks.get(s) == 1)),
    ]


@dataclass(frozen=True)
class LanguageModel:
    """One language's logistic regression on standardised features, and its answer threshold."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, row: Sequence[float]) -> float:
        z = self.bias + sum(c * (x - m) / s for c, x, m, s in zip(self.coef, row, self.mean, self.scale, strict=True))
        z = max(min(z, 40.0), -40.0)
        return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class Decision:
    """What the search says about its top hit: calibrated `confidence`, whether to answer, and why not."""

    confidence: float
    answerable: bool
    abstained_reason: Optional[str] = None


@dataclass(frozen=True)
class AnswerCalibrator:
    models: dict[str, LanguageModel]
    meta: dict[str, Any] = field(default_factory=dict)  # how it was fitted (counts, encoder, OOF figures)

    def probability(self, top: Hit, runner_up: Optional[Hit], language: str) -> float:
        model = self.models.get(language) or self.models[LANGUAGES[0]]
        return model.probability(feature_row(top, runner_up))

    def threshold(self, language: str) -> float:
        return (self.models.get(language) or self.models[LANGUAGES[0]]).threshold

    def to_json(self) -> str:
        body = {"format": FORMAT, "features": list(FEATURES), "meta": self.meta,
                "languages": {lang: {"mean": list(m.mean), "scale": list(m.scale), "coef": list(m.coef),
                                     "bias": m.bias, "threshold": m.threshold}
                              for lang, m in self.models.items()}}
        return json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AnswerCalibrator:
        """Parse and validate; BadInput says what is wrong (never a half-usable calibrator)."""
        try:
            body = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: hostile nesting
            raise BadInput(f"calibrator is not JSON: {str(exc)[:120]}") from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise BadInput(f"calibrator format must be {FORMAT!r}")
        if body.get("features") != list(FEATURES):
            raise BadInput(f"calibrator features must be {list(FEATURES)}, got {str(body.get('features'))[:80]}")
        langs = body.get("languages")
        if not isinstance(langs, dict) or set(langs) != set(LANGUAGES):
            raise BadInput(f"calibrator must have exactly the languages {LANGUAGES}")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        return cls({lang: _model(lang, langs[lang]) for lang in LANGUAGES}, meta)


def _numbers(lang: str, name: str, value: Any, n: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise BadInput(f"calibrator {lang}.{name} must be a list of {n} numbers")
    return tuple(_number(lang, name, v) for v in value)


def _number(lang: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"calibrator {lang}.{name} must be finite numbers, got {str(value)[:30]!r}")
    return float(value)


def _model(lang: str, raw: Any) -> LanguageModel:
    if not isinstance(raw, dict):
        raise BadInput(f"calibrator {lang} must be an object")
    n = len(FEATURES)
    scale = _numbers(lang, "scale", raw.get("scale"), n)
    if any(s <= 0 for s in scale):
        raise BadInput(f"calibrator {lang}.scale must be positive")
    threshold = _number(lang, "threshold", raw.get("threshold"))
    if not 0.0 <= threshold <= 1.0:
        raise BadInput(f"calibrator {lang}.threshold must be within [0, 1]")
    return LanguageModel(_numbers(lang, "mean", raw.get("mean"), n), scale, _numbers(lang, "coef", raw.get("coef"), n),
                         _number(lang, "bias", raw.get("bias")), threshold)


def read_calibrator(path: Path | str) -> AnswerCalibrator:
    """The calibrator in `path`; BadInput when it is missing, oversized or malformed."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BadInput(f"calibrator {path} is {size} bytes (limit {MAX_FILE_BYTES})")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"calibrator {path} cannot be read: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"calibrator {path} is not UTF-8 text") from exc
    try:
        return AnswerCalibrator.from_json(text)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from exc


def load_calibrator(path: Path | str = DEFAULT_CALIBRATION) -> Optional[AnswerCalibrator]:
    """`read_calibrator`, or None with a logged warning: the store then keeps the raw threshold."""
    try:
        return read_calibrator(path)
    except BadInput as exc:
        log.warning("FAQ answer calibrator not used (raw score, threshold %.2f instead): %s", RAW_THRESHOLD, exc)
        return None


def decide(hits: Sequence[Hit], language: str, calibrator: Optional[AnswerCalibrator]) -> list[Decision]:
    """One decision per hit, best first. Only the top hit can be answerable; confidences are
    calibrated (or the raw score without a calibrator) and never rise down the ranking."""
    out: list[Decision] = []
    for i, hit in enumerate(hits):
        runner_up = hits[i + 1] if i + 1 < len(hits) else None
        if calibrator is None:
            p, threshold, how = hit.confidence, RAW_THRESHOLD, "raw score"
        else:
            p, threshold, how = calibrator.probability(hit, runner_up, language), calibrator.threshold(language), \
                f"calibrated ({language})"
        if out:
            p = min(p, out[-1].confidence)
        p = round(p, 4)
        if i > 0:
            out.append(Decision(p, False, "not the top hit"))
        elif p >= threshold:
            out.append(Decision(p, True))
        else:
            out.append(Decision(p, False, f"{how} confidence {p:.2f} below {threshold:.2f}"))
    return out
