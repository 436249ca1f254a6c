"""One fixed, named feature row per user turn for the learned routing tree (no Rasa imports).

The tree (kefu.routing.tree) and its training (`kefu routing train`) must see exactly the same
numbers, so both build them here from the same inputs: the turn's `TurnSignals` (parse data
and slots, kefu.routing.decision), a `TurnContext` (the message text, entities, channel and
turn count the policy reads from the tracker) and, when the knowledge layer was asked, an
`Answerability`. scikit-learn 1.1's trees cannot take NaN, so a missing input is encoded
explicitly: the value becomes MISSING (-1) and a `*_known` column says 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

from kefu.routing.decision import ANGRY_INTENTS, EXPLICIT, TurnSignals
from kefu.routing.settings import LEVELS, RoutingConfig

MISSING = -1.0
CHANNELS = ("rest", "socketio", "wechat", "slack")  # anything else is "other" (len(CHANNELS))
KB_SOURCES = ("faq", "graph", "case", "rule")  # none / unknown → 0, then 1.. in this order
INTENSITY = {"none": 0.0, "mild": 1.0, "strong": 2.0}
# intent_kind: what the routing file says about the predicted intent
KIND_NONE, KIND_FALLBACK, KIND_CONVERSATIONAL, KIND_TOPIC, KIND_PERSON, KIND_OTHER = range(6)

FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier label; the tree looks through it

FEATURES: tuple[str, ...] = (
    "fallback_fired", "confidence", "margin", "oos_score", "oos_known", "intent_kind", "faq_intent",
    "sentiment_score", "sentiment_known", "negative", "intensity", "frustration",
    "sentiment_signals", "unclear_before", "turn_count", "length", "words", "digits", "question_marks",
    "exclamations", "shouted_words",
    "entities", "channel", "automation_level", "kb_score", "kb_known", "kb_source",
    "rule_applies", "form_covers", "in_form",
)
# how a feature is said in an explanation ("confidence 0.98 but ...")
LABELS: Mapping[str, str] = {
    "fallback_fired": "FallbackClassifier fired", "confidence": "confidence",
    "margin": "margin to the runner-up intent", "oos_score": "out-of-scope score",
    "oos_known": "out-of-scope score known", "intent_kind": "kind of intent", "faq_intent": "FAQ intent",
    "sentiment_score": "sentiment score", "sentiment_known": "sentiment known", "negative": "negative sentiment",
    "intensity": "sentiment intensity", "frustration": "frustration",
    "sentiment_signals": "emotion words", "shouted_words": "words in capitals",
    "unclear_before": "unclear turns before",
    "turn_count": "turn number", "length": "message length", "words": "words", "digits": "numbers in message",
    "question_marks": "question marks", "exclamations": "exclamation marks", "entities": "entities",
    "channel": "channel", "automation_level": "automation level", "kb_score": "best knowledge answer score",
    "kb_known": "knowledge answer known", "kb_source": "knowledge source", "rule_applies": "business rule applies",
    "form_covers": "a form covers the intent", "in_form": "inside a form",
}
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_SHOUTED = re.compile(r"\b[A-Z]{4,}\b")  # ATM, VAT, PIN are not shouting
_NUMBER = re.compile(r"\d+|[一二两三四五六七八九十百千万]+(?=[次笔天个月年周元块号])")


@dataclass(frozen=True)
class TurnContext:
    """What the tracker says about the turn beyond the parse: its text, entities, channel, position."""

    text: str = ""
    entities: int = 0
    channel: Optional[str] = None
    turn_count: int = 1  # user turns in this session, this one included


@dataclass(frozen=True)
class Answerability:
    """What the knowledge layer would answer; None fields are unknown (not asked, timed out)."""

    score: Optional[float] = None  # best FAQ / graph / case score (calibrated when the layer is)
    source: Optional[str] = None  # faq | graph | case | rule
    rule_applies: Optional[bool] = None


def words(text: str) -> int:
    """Words in a mixed zh/en message: each Chinese character counts, each Latin word counts."""
    return len(_CJK.findall(text)) + len(_LATIN_WORD.findall(text))


def intent_kind(intent: Optional[str], config: RoutingConfig) -> int:
    """The routing file's view of an intent, as a small category code."""
    if intent is None:
        return KIND_NONE
    if intent in config.fallback_intents:
        return KIND_FALLBACK
    if intent in config.conversational_intents:
        return KIND_CONVERSATIONAL
    if intent in EXPLICIT or intent in ANGRY_INTENTS:
        return KIND_PERSON
    if config.group_of(intent) is not None:
        return KIND_TOPIC
    return KIND_OTHER


def _known(value: Optional[float]) -> tuple[float, float]:
    return (MISSING, 0.0) if value is None else (float(value), 1.0)


def classifier_intent(signals: TurnSignals) -> tuple[Optional[str], float, float]:
    """(intent, confidence, margin to the runner-up) as the intent classifier ranked them.

    Rasa's FallbackClassifier replaces a top intent below its fixed 0.5 with nlu_fallback at
    exactly 0.5 (long, detailed questions often land there although their topic is clear); the
    tree owns "unclear" instead, so it sees the classifier's own ranking and `fallback_fired`.
    """
    intent, confidence = signals.intent, signals.confidence
    ranking = [r for r in signals.ranking if r["name"] != FALLBACK_INTENT]
    if intent == FALLBACK_INTENT and ranking:
        intent, confidence = ranking[0]["name"], ranking[0]["confidence"]
    others = [r["confidence"] for r in ranking if r["name"] != intent]
    return intent, confidence, round(confidence - (max(others) if others else 0.0), 4)


def _channel(name: Optional[str]) -> float:
    return float(CHANNELS.index(name)) if name in CHANNELS else float(len(CHANNELS))


def _kb_source(name: Optional[str]) -> float:
    return float(KB_SOURCES.index(name) + 1) if name in KB_SOURCES else 0.0


def build_row(
    signals: TurnSignals,
    context: TurnContext,
    config: RoutingConfig,
    answer: Optional[Answerability] = None,
) -> dict[str, float]:
    """The feature row (FEATURES order, all floats) of one user turn."""
    answer = answer or Answerability()  # the kb_* slots describe the previous answer, not this turn
    oos_score, oos_known = _known(signals.out_of_scope["score"] if signals.out_of_scope else None)
    sentiment = signals.sentiment or {}
    sentiment_score, sentiment_known = _known(sentiment.get("score"))
    kb_score, kb_known = _known(answer.score)
    text = context.text or ""
    intent, confidence, margin = classifier_intent(signals)
    group = config.group_of(intent)
    row = {
        "fallback_fired": float(signals.intent == FALLBACK_INTENT),
        "confidence": round(confidence, 4),
        "margin": margin,
        "oos_score": oos_score,
        "oos_known": oos_known,
        "intent_kind": float(intent_kind(intent, config)),
        "faq_intent": float(intent in config.faq_intents),
        "sentiment_score": sentiment_score,
        "sentiment_known": sentiment_known,
        "negative": float(sentiment.get("label") == "negative"),
        "intensity": INTENSITY.get(str(sentiment.get("intensity")), MISSING),
        "frustration": MISSING if signals.frustration is None else float(signals.frustration),
        "sentiment_signals": float(len(sentiment.get("signals") or [])),
        "unclear_before": float(signals.unclear_before),
        "turn_count": float(max(1, context.turn_count)),
        "length": float(len(text)),
        "words": float(words(text)),
        "digits": float(len(_NUMBER.findall(text))),
        "question_marks": float(text.count("?") + text.count("？")),
        "exclamations": float(text.count("!") + text.count("！")),
        "shouted_words": float(len(_SHOUTED.findall(text))),
        "entities": float(max(0, context.entities)),
        "channel": _channel(context.channel),
        "automation_level": float(LEVELS.index(config.level_for(group))),
        "kb_score": kb_score,
        "kb_known": kb_known,
        "kb_source": _kb_source(answer.source),
        "rule_applies": MISSING if answer.rule_applies is None else float(answer.rule_applies),
        "form_covers": float(intent in config.self_service_intents),
        "in_form": float(signals.in_form),
    }
    return {name: row[name] for name in FEATURES}


def as_vector(row: Mapping[str, float]) -> list[float]:
    """The row as a list in FEATURES order (what the tree is trained on and walks)."""
    return [float(row[name]) for name in FEATURES]
