"""Wire contracts between Kefu's processes, as TypedDicts, and the one place raw values are checked.

- NLU → dialogue (Rasa server) → actions (action server): the parse result's extras that
  custom_components/ write (`sentiment`, `intent_thresholds`, `out_of_scope`), read by the
  routing policy and by the actions from `tracker.latest_message`;
- routing policy → actions: the routing record in the `routing` slot (`RoutingRecord`);
- actions → web chat: the custom payloads of a handoff (`HandoffQueued`, `CallbackPayload`;
  the console's relay sends `HandoffState`), read by the socket.io channel and the widget.

Values arrive as JSON from another process (or a hostile client), so `read_parse` and the
`read_*` helpers validate them once at the boundary: a malformed piece becomes None
(neutral / unknown), never an exception, and routing code downstream trusts the types.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Optional, TypedDict

SentimentLabel = Literal["positive", "neutral", "negative"]
Intensity = Literal["none", "mild", "strong"]
SENTIMENT_LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
INTENSITIES: tuple[str, ...] = ("none", "mild", "strong")
RANKING_LIMIT = 5  # ranked intents a routing record and a ticket keep
MAX_SIGNALS, MAX_SIGNAL_CHARS = 10, 80


class RankedIntent(TypedDict):
    name: str
    confidence: float


class _SentimentLabel(TypedDict):
    label: SentimentLabel


class Sentiment(_SentimentLabel, total=False):
    """`parse_data["sentiment"]` (SentimentAnalyzer). Read back, score/intensity may be None; a
    label alone comes from the `sentiment` slot when the parse result has none."""

    score: Optional[float]
    intensity: Optional[Intensity]
    signals: list[str]


class _Thresholds(TypedDict):
    auto: float
    specialist: float
    source: Optional[str]  # "targets" | "intent" | "numbers" (kefu.thresholds.thresholds_for)


class IntentThresholds(_Thresholds, total=False):
    """`parse_data["intent_thresholds"]` (BertIntentClassifier): the model's thresholds for the intent."""

    fallback: bool


class OutOfScope(TypedDict):
    """`parse_data["out_of_scope"]` (BertIntentClassifier): the out-of-scope score and its verdict."""

    score: Optional[float]
    threshold: Optional[float]
    flagged: bool


class Intent(TypedDict):
    name: Optional[str]
    confidence: float


class ParseResult(TypedDict):
    """What routing reads of one parse result, validated (`read_parse`)."""

    intent: Intent
    intent_ranking: list[RankedIntent]
    sentiment: Optional[Sentiment]
    intent_thresholds: Optional[IntentThresholds]
    out_of_scope: Optional[OutOfScope]


class TurnRef(TypedDict):
    """Which user message a routing record belongs to (the latest user event's id and time)."""

    message_id: Optional[str]
    timestamp: Optional[float]


class RecordThresholds(TypedDict):
    auto: float
    specialist: float
    source: str


class _RoutingRecord(TypedDict):
    route: str  # bot | specialist | human | senior | clarify | callback
    queue: Optional[str]
    reason: str
    why: str
    priority: int


class RoutingRecord(_RoutingRecord, total=False):
    """Everything one routing decision looked at (kefu.routing.decision.decide): the audit log line,
    the `routing` slot RoutingPolicy sets for the actions, and the ticket's `reason_detail`."""

    intent: Optional[str]
    confidence: float
    ranking: list[RankedIntent]
    thresholds: RecordThresholds
    out_of_scope: Optional[OutOfScope]
    sentiment: Optional[Sentiment]
    frustration: Optional[float]
    senior_thresholds: dict[str, Optional[float]]
    group: Optional[str]
    automation_level: str
    kb: dict[str, Any]
    unclear_before: int
    in_form: bool
    config: str  # the routing file's digest
    at: str  # ISO time of the decision
    turn: Optional[TurnRef]
    hours: dict[str, Any]  # {queue, open, schedule, timezone} for a human route
    capacity: dict[str, int]  # {waiting, max_waiting} once the action checked the queue
    original_reason: str  # a callback's reason before hours / capacity turned it into one
    router: str  # "cascade" | "tree": who decided (kefu.routing.router)
    tree: str  # the deciding tree file's digest (first 12 hex digits)
    path: str  # the tests that fired on the way to the tree's leaf, in words (shown in the console)
    features: dict[str, float]  # the feature row the tree saw (kefu.routing.features)
    tree_unused: str  # why a configured tree did not route (unapproved, digest mismatch, corrupt file)


class HandoffQueued(TypedDict):
    """The custom payload announcing a live handoff; the web chat shows "waiting for an agent"."""

    handoff: Literal["queued"]
    queue: str
    reason: str
    ticket: str
    position: int
    wait_minutes: int


class HandoffState(TypedDict):
    """The console relay's later states ("started" with the agent's name, "ended")."""

    handoff: Literal["started", "ended"]
    queue: Optional[str]
    agent: Optional[str]


class CallbackTicket(TypedDict):
    queue: str
    ticket: str


class CallbackPayload(TypedDict):
    """The custom payload of a callback request (outside business hours or a full queue)."""

    callback: CallbackTicket


def to_float(value: Any) -> Optional[float]:
    """Slot and parse values arrive untyped: keep finite numbers, drop the rest."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_sentiment(value: Any) -> Optional[Sentiment]:
    """The sentiment interface's fields only, JSON-safe (a NaN score or odd types are dropped)."""
    if not isinstance(value, Mapping):
        return None
    label = value.get("label")
    if label not in SENTIMENT_LABELS:
        return None
    intensity = value.get("intensity")
    signals = value.get("signals")
    return {
        "label": label,
        "score": to_float(value.get("score")),
        "intensity": intensity if intensity in INTENSITIES else None,
        "signals": [str(s)[:MAX_SIGNAL_CHARS] for s in signals[:MAX_SIGNALS]] if isinstance(signals, list) else [],
    }


def read_thresholds(value: Any) -> Optional[IntentThresholds]:
    """The classifier's thresholds for the predicted intent, when they are well-formed."""
    if not isinstance(value, Mapping):
        return None
    auto, specialist = to_float(value.get("auto")), to_float(value.get("specialist"))
    if auto is None or specialist is None or not 0.0 <= specialist <= auto <= 1.0:
        return None
    source = value.get("source")
    return {"auto": auto, "specialist": specialist, "source": source if isinstance(source, str) else None}


def read_out_of_scope(value: Any) -> Optional[OutOfScope]:
    """The out-of-scope verdict, when `flagged` is a real boolean."""
    if not isinstance(value, Mapping) or not isinstance(value.get("flagged"), bool):
        return None
    return {"score": to_float(value.get("score")), "threshold": to_float(value.get("threshold")),
            "flagged": value["flagged"]}


def read_ranking(value: Any, limit: int = RANKING_LIMIT) -> list[RankedIntent]:
    """The first `limit` entries of an intent ranking, junk entries skipped, confidences rounded."""
    entries = value[:limit] if isinstance(value, (list, tuple)) else []  # noqa: UP038
    return [
        {"name": str(r.get("name")), "confidence": round(to_float(r.get("confidence")) or 0.0, 4)}
        for r in entries
        if isinstance(r, Mapping)
    ]


def read_intent(value: Any) -> Intent:
    """The predicted intent's name (None unless a string) and confidence (0.0 unless a finite number)."""
    if not isinstance(value, Mapping):
        return {"name": None, "confidence": 0.0}
    name = value.get("name")
    return {"name": name if isinstance(name, str) else None, "confidence": to_float(value.get("confidence")) or 0.0}


def read_parse(parse_data: Any) -> ParseResult:
    """The routing-relevant part of a raw parse result (Rasa's `parse_data` / `latest_message`), validated."""
    parse = parse_data if isinstance(parse_data, Mapping) else {}
    return {
        "intent": read_intent(parse.get("intent")),
        "intent_ranking": read_ranking(parse.get("intent_ranking") or []),
        "sentiment": read_sentiment(parse.get("sentiment")),
        "intent_thresholds": read_thresholds(parse.get("intent_thresholds")),
        "out_of_scope": read_out_of_scope(parse.get("out_of_scope")),
    }
