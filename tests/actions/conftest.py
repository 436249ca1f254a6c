"""Tracker fixtures for action tests, as RasaHQ/financial-demo does: real rasa-sdk
Tracker objects and a CollectingDispatcher, with the project's real domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.services import Services, use_services

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "rasa_project" / "domain"

# handoff/routing action tests: real PostgreSQL database + routing file (tests/actions/handoff_fixtures.py)
from tests.actions.handoff_fixtures import handoff_db, handoff_env  # noqa: E402,F401


def user_event(text: str, intent: str, entities: Optional[list] = None) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or [], "text": text},
    }


def make_tracker(
    intent: str = "greet",
    text: str = "",
    slots: Optional[dict[str, Any]] = None,
    history: Optional[list[dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
) -> Tracker:
    """A tracker whose latest user message has `intent`; `history` comes before it."""
    latest = user_event(text or intent, intent)
    events = [*(history or []), latest]
    return Tracker(
        sender_id="test-user",
        slots={"language": "zh", **(slots or {})},
        latest_message=latest["parse_data"],
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    merged: dict[str, Any] = {"responses": {}}
    for path in sorted(DOMAIN_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        merged["responses"].update(doc.get("responses") or {})
        for key in ("intents", "slots", "forms", "actions", "entities"):
            if key in doc:
                merged[key] = doc[key]
    return merged


@pytest.fixture(autouse=True)
def services() -> Iterator[Services]:
    """Fresh action-server services for each test: the members a test sets, the rest opened lazily."""
    with use_services(Services()) as current:
        yield current


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()
