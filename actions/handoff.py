"""Handoff to a human. For now it tells the customer an agent will join, in the queue
`handoff.queues` chose; tickets, pausing and the agent console come with the routing issue."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent
from handoff.queues import plan_handoff


def hand_over(dispatcher: CollectingDispatcher, trigger: str) -> List[Dict[str, Any]]:
    """Say the handoff message for `trigger`; shared by the handoff and fallback actions."""
    plan = plan_handoff(trigger)
    dispatcher.utter_message(
        response=plan.response, json_message={"handoff": {"queue": plan.queue, "reason": plan.reason}}
    )
    return []


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        return hand_over(dispatcher, latest_intent(tracker) or "ask_human")
