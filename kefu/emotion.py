"""Conversation-level emotion: a frustration score that accumulates over turns.

Rasa-free so the action server (which fills the `frustration` slot) and the routing
logic share one rule: one strongly negative turn, or two negative turns in a row,
reach ESCALATION_LEVEL; neutral and positive turns let it decay, so a customer who
calmed down is not sent to the senior queue for an old outburst.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

ESCALATION_LEVEL = 1.0
# one mild negative turn: half way; a second one in a row reaches the escalation level
MILD_STEP = 0.5
# a mild negative that only the learned classifier saw, without any lexical cue and without a
# confident score, adds this much: "it ends with 4821" or "I lost my card" are not anger, and two
# such turns must not send a customer filling in a form to the senior queue
WEAK_STEP = 0.25
CONFIDENT_SCORE = -0.6
# decay factors applied to the previous value on a calm turn
NEUTRAL_DECAY = 0.5
POSITIVE_DECAY = 0.25


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _previous(value: Any) -> float:
    """Slot values arrive untyped (None on a new conversation, strings from old trackers)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return _clamp(number) if math.isfinite(number) else 0.0


def _label(sentiment: Optional[Mapping[str, Any]]) -> tuple[str, str]:
    if not isinstance(sentiment, Mapping):
        return "neutral", "none"
    label = sentiment.get("label")
    intensity = sentiment.get("intensity")
    return (
        label if label in ("positive", "neutral", "negative") else "neutral",
        intensity if intensity in ("none", "mild", "strong") else "none",
    )


def _uncorroborated(sentiment: Optional[Mapping[str, Any]]) -> bool:
    """True when only the learned model (signals "model_*") called the turn negative, not confidently."""
    if not isinstance(sentiment, Mapping):
        return False
    signals = sentiment.get("signals")
    if not isinstance(signals, list | tuple) or not signals:
        return False  # producers that do not list signals are taken at their word
    if not all(isinstance(s, str) and s.startswith("model_") for s in signals):
        return False
    try:
        score = float(sentiment.get("score", 0.0))
    except (TypeError, ValueError):
        return True
    return not score <= CONFIDENT_SCORE


def update_frustration(previous: float, sentiment: Optional[Mapping[str, Any]]) -> float:
    """The frustration after this turn, in [0, 1].

    Strong negative → 1.0; mild negative adds MILD_STEP (two in a row from calm → 1.0; a
    calm turn in between halves it first, so it stays below), or only WEAK_STEP when the
    learned model alone, unconfidently, called it negative; neutral halves it; positive
    quarters it. A missing or malformed sentiment counts as neutral.
    """
    before = _previous(previous)
    label, intensity = _label(sentiment)
    if label == "negative":
        if intensity == "strong":
            return ESCALATION_LEVEL
        return _clamp(before + (WEAK_STEP if _uncorroborated(sentiment) else MILD_STEP))
    if label == "positive":
        return round(before * POSITIVE_DECAY, 4)
    return round(before * NEUTRAL_DECAY, 4)


def is_escalation(frustration: float, sentiment: Optional[Mapping[str, Any]]) -> bool:
    """True when the customer should go to a senior agent because of their emotion."""
    label, intensity = _label(sentiment)
    return _previous(frustration) >= ESCALATION_LEVEL or (label == "negative" and intensity == "strong")
