"""Queue choice for a handoff. The full routing (confidence bands, sentiment, skill
groups, tickets) builds on this; for now a handoff names its queue and reason so the
customer hears the right message and the decision can be audited.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERAL = "general"
SENIOR = "senior"


@dataclass(frozen=True)
class HandoffPlan:
    queue: str
    reason: str
    response: str  # the utter_* response the customer hears


def plan_handoff(trigger: str) -> HandoffPlan:
    """Map what triggered the handoff to a queue: anger goes to senior agents."""
    if trigger == "insult":
        return HandoffPlan(SENIOR, "anger", "utter_handoff_senior")
    if trigger == "complain":
        return HandoffPlan(GENERAL, "complaint", "utter_handoff_complaint")
    if trigger == "repeated_fallback":
        return HandoffPlan(GENERAL, "repeated_fallback", "utter_handoff_fallback")
    return HandoffPlan(GENERAL, "explicit_request", "utter_handoff")
