"""FAQ answers. For now each FAQ intent has a written response `utter_faq_<intent>` in
the domain; the knowledge-base issue replaces the lookup with a search in knowledge/."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent

# Intents that may interrupt a form and are answered by a fixed small-talk response.
SMALL_TALK = {"chitchat": "utter_chitchat", "bot_challenge": "utter_iamabot"}


def response_for(intent: Optional[str], responses: Dict[str, Any]) -> Optional[str]:
    """The response that answers `intent`, or None when the domain has none."""
    if not intent:
        return None
    name = SMALL_TALK.get(intent, f"utter_faq_{intent}")
    return name if name in responses else None


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        response = response_for(latest_intent(tracker), domain.get("responses", {}))
        dispatcher.utter_message(response=response or "utter_ask_rephrase")
        return []
