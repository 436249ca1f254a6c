"""What the customer hears for a handoff decision, and the queue names routing uses.

The decision itself is `kefu.routing.decision.decide`; this module maps its reason to the
response (so an angry customer hears an apology and a complaint an acknowledgement) and
keeps the small pre-routing API (`plan_handoff`) for callers that only know a trigger.
"""

from __future__ import annotations

from dataclasses import dataclass

from kefu.routing.settings import GENERAL, SENIOR

__all__ = ["GENERAL", "SENIOR", "HandoffPlan", "plan_handoff", "handoff_response"]

RESPONSES = {
    "angry": "utter_handoff_senior",
    "complaint": "utter_handoff_complaint",
    "two_fallbacks": "utter_handoff_fallback",
    "low_confidence": "utter_handoff_fallback",
    "out_of_scope": "utter_handoff_fallback",
    "specialist": "utter_handoff_specialist",
    "assist": "utter_handoff",
    "explicit_request": "utter_handoff",
}
TRIGGERS = {
    "insult": ("angry", SENIOR),
    "complain": ("complaint", GENERAL),
    "repeated_fallback": ("two_fallbacks", GENERAL),
}


@dataclass(frozen=True)
class HandoffPlan:
    queue: str
    reason: str
    response: str  # the utter_* response the customer hears


def handoff_response(reason: str) -> str:
    """The utter_* announcing a live handoff for `reason` (callbacks have their own)."""
    return RESPONSES.get(reason, "utter_handoff")


def plan_handoff(trigger: str) -> HandoffPlan:
    """Map what triggered the handoff (an intent name or "repeated_fallback") to a queue."""
    reason, queue = TRIGGERS.get(trigger, ("explicit_request", GENERAL))
    return HandoffPlan(queue, reason, handoff_response(reason))
