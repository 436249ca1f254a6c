"""Conversation-level emotion: the custom slot mapping that keeps `frustration` current.

Rasa calls `action_update_frustration` after every user message (the slot's custom
mapping in rasa_project/domain/sentiment.yml). The rule itself is Rasa-free
(kefu/emotion.py) so routing and analytics read the same definition.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from kefu.emotion import update_frustration

FRUSTRATION_SLOT = "frustration"


class ActionUpdateFrustration(Action):
    def name(self) -> str:
        return "action_update_frustration"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        sentiment = (tracker.latest_message or {}).get("sentiment")
        value = update_frustration(tracker.get_slot(FRUSTRATION_SLOT), sentiment)
        return [SlotSet(FRUSTRATION_SLOT, value)]
