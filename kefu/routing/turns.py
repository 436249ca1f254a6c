"""Reading a conversation's events (Rasa's JSON event dicts) for routing, Rasa-free.

Both the Rasa server (policy: `event.as_dict()`) and the action server (rasa-sdk trackers
hold dicts already) pass the same shape, so the unclear-turn count, the turn a routing
record belongs to, and the rating question are computed one way (`turn_signals`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, Mapping, Optional, Sequence

from kefu.contracts import TurnRef, to_float
from kefu.routing.decision import TurnSignals, is_unclear
from kefu.routing.settings import RoutingConfig

RATING_QUESTION = "utter_ask_rating"
# events after which earlier turns no longer count (a new session, the end of a human handoff)
BOUNDARIES = frozenset({"session_started", "resume", "restart"})
SKIPPED_ACTIONS = frozenset({"action_listen", "action_extract_slots", "action_session_start"})
SIGNAL_SLOTS = ("frustration", "sentiment", "kb_source", "kb_confidence")

_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(
    r"^\s*(?:rating\s*[:：]?\s*)?([1-5一二两三四五])\s*(?:分|星|颗星|stars?|/\s*5|out of 5)?\s*[.!。！]?\s*$", re.I
)


def _parse(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("parse_data") or {}


def latest_user(events: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The latest user event, or None."""
    return next((e for e in reversed(events) if e.get("event") == "user"), None)


def latest_turn(events: Iterable[Mapping[str, Any]]) -> Optional[TurnRef]:
    """Which user message the conversation is at: its message id and timestamp (None before any)."""
    event = latest_user(list(events))
    if event is None:
        return None
    message_id, timestamp = event.get("message_id"), to_float(event.get("timestamp"))
    if not isinstance(message_id, str) and timestamp is None:
        return None
    return {"message_id": message_id if isinstance(message_id, str) else None, "timestamp": timestamp}


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


def user_turns(events: Iterable[Mapping[str, Any]]) -> int:
    """User messages since the session started (or a handoff ended), the latest included."""
    count = 0
    for event in reversed(list(events)):
        kind = event.get("event")
        if kind in BOUNDARIES:
            break
        count += kind == "user"
    return count


def frustration_before(events: Iterable[Mapping[str, Any]]) -> Optional[float]:
    """The frustration slot as it was before the latest user message (None when never set)."""
    for event in reversed(_before_latest_user(list(events))):
        if event.get("event") == "slot" and event.get("name") == "frustration":
            return to_float(event.get("value"))
    return None


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


def turn_signals(
    parse_data: Mapping[str, Any],
    slots: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    config: RoutingConfig,
    in_form: bool,
) -> TurnSignals:
    """The signals of the latest user turn, from its parse data, the slots and the events before it."""
    events = list(events)
    return TurnSignals.from_parse(
        parse_data,
        {**{name: slots.get(name) for name in SIGNAL_SLOTS if name in slots},
         "frustration_before": frustration_before(events)},
        unclear_before=unclear_before(events, config),
        in_form=in_form,
        turn=latest_turn(events),
    )
