"""Reading a conversation's events (Rasa's JSON event dicts) for routing and the ticket, Rasa-free.

Both the Rasa server (policy: `event.as_dict()`) and the action server (rasa-sdk trackers
hold dicts already) pass the same shape, so the unclear-turn count, the rating question
and the ticket's transcript are computed one way.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, Mapping, Optional

from handoff.routing import TurnSignals, clean_sentiment, is_unclear, to_float
from handoff.routing_config import RoutingConfig

RATING_QUESTION = "utter_ask_rating"
# events after which earlier turns no longer count (a new session, the end of a human handoff)
BOUNDARIES = frozenset({"session_started", "resume", "restart"})
SKIPPED_ACTIONS = frozenset({"action_listen", "action_extract_slots", "action_session_start"})
TRANSCRIPT_TURNS = 20
TRANSCRIPT_CHARS = 1000

_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(
    r"^\s*(?:rating\s*[:：]?\s*)?([1-5一二两三四五])\s*(?:分|星|颗星|stars?|/\s*5|out of 5)?\s*[.!。！]?\s*$", re.I
)


def _parse(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("parse_data") or {}


def _before_latest_user(events: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events before the latest user message (all of them when there is none)."""
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") == "user":
            return events[:index]
    return events


def unclear_before(events: Iterable[Mapping[str, Any]], config: RoutingConfig) -> int:
    """How many user turns in a row right before the latest one the bot did not understand."""
    count = 0
    for event in reversed(_before_latest_user(list(events))):
        kind = event.get("event")
        if kind in BOUNDARIES:
            break
        if kind != "user":
            continue
        if not is_unclear(TurnSignals.from_parse(_parse(event), {}), config):
            break
        count += 1
    return count


def asked_for_rating(events: Iterable[Mapping[str, Any]]) -> bool:
    """True when the bot's last action before the latest user message was the rating question."""
    bot_messages = 0
    for event in reversed(_before_latest_user(list(events))):
        if event.get("event") == "action":
            name = event.get("name")
            if name in SKIPPED_ACTIONS:
                continue
            # the question's own message is allowed; any later one (an agent's, say) means it moved on
            return name == RATING_QUESTION and bot_messages <= 1
        if event.get("event") == "bot" and event.get("text"):
            bot_messages += 1
    return False


def parse_rating(text: Any) -> Optional[int]:
    """A 1-5 satisfaction rating from a short reply ("5", "4分", "五星", "3/5", "★★★★"), else None."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    normalised = unicodedata.normalize("NFKC", text).strip()
    stars = normalised.replace(" ", "")
    if stars and set(stars) <= {"★", "⭐"} and 1 <= len(stars) <= 5:
        return len(stars)
    match = _RATING.match(normalised)
    if not match:
        return None
    digit = match.group(1)
    return _CHINESE_DIGITS.get(digit) or int(digit)


def transcript(events: Iterable[Mapping[str, Any]], limit: int = TRANSCRIPT_TURNS) -> list[dict[str, Any]]:
    """The last `limit` customer and bot messages, each cut to TRANSCRIPT_CHARS characters."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        text = event.get("text")
        if kind not in ("user", "bot") or not isinstance(text, str) or not text.strip():
            continue
        lines.append(
            {
                "role": "customer" if kind == "user" else "bot",
                "text": text[:TRANSCRIPT_CHARS],
                "ts": to_float(event.get("timestamp")) or 0.0,
            }
        )
    return lines[-limit:]


def intent_ranking(parse_data: Mapping[str, Any], limit: int = 5) -> list[dict[str, Any]]:
    ranking = parse_data.get("intent_ranking") or []
    return [
        {"name": str(r.get("name")), "confidence": round(to_float(r.get("confidence")) or 0.0, 4)}
        for r in ranking[:limit]
        if isinstance(r, Mapping)
    ]


def sentiment_trend(events: Iterable[Mapping[str, Any]], limit: int = TRANSCRIPT_TURNS) -> list[dict[str, Any]]:
    """Per customer turn: the sentiment label and score NLU gave it (neutral when unknown)."""
    trend: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") != "user":
            continue
        sentiment = clean_sentiment(_parse(event).get("sentiment")) or {}
        trend.append(
            {
                "label": sentiment.get("label", "neutral"),
                "score": to_float(sentiment.get("score")) or 0.0,
                "intensity": sentiment.get("intensity") or "none",
                "ts": to_float(event.get("timestamp")) or 0.0,
            }
        )
    return trend[-limit:]
