"""Fallback routing: the first misunderstood or out-of-scope turn gets a clarifying
question, the second one in a row goes to a human."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent
from actions.handoff import hand_over

FALLBACK_INTENTS = {"nlu_fallback", "out_of_scope"}
MAX_FALLBACKS = 2


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


class ActionFallback(Action):
    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        if consecutive_fallbacks(tracker) >= MAX_FALLBACKS:
            return hand_over(dispatcher, "repeated_fallback")
        if latest_intent(tracker) == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return []
