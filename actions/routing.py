"""Unclear turns: one clarifying question, then a person.

`action_fallback` runs for NLU fallbacks and out-of-scope messages (rules) and for questions
whose intent confidence is below the specialist threshold or that the classifier's
out-of-scope score flags (RoutingPolicy). It follows the turn's routing decision
(kefu/routing, RoutingPolicy's record or decided here after a rule): the first unclear turn
gets a clarifying question — naming the likeliest topic when there is one — and the second
in a row, an angry customer or any other human route goes through the shared handoff
(handoff.opening: ticket + pause).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of, latest_intent
from actions.handoff import hand_over, route_turn, routing_config
from kefu.routing.settings import RoutingConfig

FALLBACK_INTENTS = {"nlu_fallback", "out_of_scope"}
MAX_FALLBACKS = 2
# a ranked intent below this is too weak to name in the clarifying question
TOPIC_MIN_CONFIDENCE = 0.3


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the latest user turns in a row were fallbacks (this turn included)."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in FALLBACK_INTENTS:
            break
        count += 1
    return count


def likely_topic(tracker: Tracker, config: RoutingConfig) -> Optional[str]:
    """The topic of the best real intent in the ranking, in the customer's language."""
    parse = tracker.latest_message or {}
    candidates = [parse.get("intent") or {}, *(parse.get("intent_ranking") or [])]
    for candidate in candidates:
        name = candidate.get("name")
        if name in config.fallback_intents or not name:
            continue
        try:
            confidence = float(candidate.get("confidence") or 0.0)
        except (TypeError, ValueError):
            continue
        if confidence >= TOPIC_MIN_CONFIDENCE:
            return config.topic(name, language_of(tracker))
        return None
    return None


class ActionFallback(Action):
    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        config = routing_config()
        decision = route_turn(tracker, config)
        if decision.hands_over:
            return await hand_over(dispatcher, tracker, domain, decision, config)
        if decision.reason == "out_of_scope" or latest_intent(tracker) == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        topic = likely_topic(tracker, config)
        if topic:
            dispatcher.utter_message(response="utter_clarify", topic=topic)
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return []
