"""Small helpers every action module shares."""

from __future__ import annotations

from typing import Optional

from rasa_sdk import Tracker


def language_of(tracker: Tracker) -> str:
    """The conversation's language slot, "zh" unless it says "en"."""
    return "en" if tracker.get_slot("language") == "en" else "zh"


def latest_intent(tracker: Tracker) -> Optional[str]:
    return (tracker.latest_message.get("intent") or {}).get("name")
