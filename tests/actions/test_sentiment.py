"""action_update_frustration with real rasa-sdk Trackers: the custom slot mapping that keeps
`frustration` current, and the domain file that wires it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions.sentiment import ActionUpdateFrustration
from kefu.emotion import ESCALATION_LEVEL
from tests.actions.conftest import make_tracker

DOMAIN_FILE = Path(__file__).resolve().parents[2] / "rasa_project" / "domain" / "sentiment.yml"
STRONG = {"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["threat"]}
MILD = {"label": "negative", "score": -0.45, "intensity": "mild", "signals": ["zh_lexicon"]}
CALM = {"label": "neutral", "score": 0.0, "intensity": "none", "signals": []}


def tracker(sentiment: Any, frustration: Optional[Any] = None):
    slots = {} if frustration is None else {"frustration": frustration}
    result = make_tracker("complain", "太慢了", slots=slots)
    if sentiment is not None:
        result.latest_message["sentiment"] = sentiment
    return result


async def run(sentiment: Any, frustration: Optional[Any] = None) -> float:
    dispatcher = CollectingDispatcher()
    events = await ActionUpdateFrustration().run(dispatcher, tracker(sentiment, frustration), {})
    assert dispatcher.messages == []  # a slot mapping never talks to the customer
    [event] = events
    assert event["event"] == "slot" and event["name"] == "frustration"
    return event["value"]


async def test_strong_negative_turn_sets_escalation_level():
    assert await run(STRONG, 0.0) == ESCALATION_LEVEL


async def test_two_negative_turns_in_a_row_accumulate_to_escalation():
    first = await run(MILD, None)
    assert 0 < first < ESCALATION_LEVEL
    assert await run(MILD, first) == ESCALATION_LEVEL


async def test_calm_turn_decays():
    assert await run(CALM, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("sentiment", [None, "negative", {"label": 3}, []])
@pytest.mark.parametrize("frustration", [None, "oops", float("nan"), -1, 99])
async def test_missing_or_malformed_input_never_crashes(sentiment, frustration):
    value = await run(sentiment, frustration)
    assert 0.0 <= value <= 1.0


def test_domain_declares_slots_entity_and_action():
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
    assert "sentiment" in domain["entities"]
    assert "action_update_frustration" in domain["actions"]
    sentiment, frustration = domain["slots"]["sentiment"], domain["slots"]["frustration"]
    assert sentiment["values"] == ["positive", "neutral", "negative"]
    assert sentiment["mappings"] == [{"type": "from_entity", "entity": "sentiment"}]
    assert frustration["type"] == "float" and frustration["influence_conversation"] is False
    assert frustration["mappings"] == [{"type": "custom", "action": ActionUpdateFrustration().name()}]
