"""Reading conversation events for routing (kefu.routing.turns); the labelled routing set's shape."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from kefu.config import PROJECT_ROOT
from kefu.routing import turns
from kefu.routing.decision import ROUTES
from kefu.routing.settings import load_routing


def user(text, intent, confidence=0.95, **extra):
    return {"event": "user", "text": text, "timestamp": 5.0,
            "parse_data": {"intent": {"name": intent, "confidence": confidence}, **extra}}


def action(name):
    return {"event": "action", "name": name}


@pytest.fixture(scope="module")
def config():
    return load_routing(PROJECT_ROOT / "data" / "routing.yml")


@pytest.mark.parametrize(
    ("text", "rating"),
    [("5", 5), (" 4 ", 4), ("3分", 3), ("五星", 5), ("一分。", 1), ("两星", 2), ("4/5", 4), ("4 out of 5", 4),
     ("5 stars", 5), ("rating: 2", 2), ("★★★", 3), ("⭐⭐⭐⭐⭐", 5), ("５", 5)],
)
def test_ratings_are_read_from_short_replies(text, rating):
    assert turns.parse_rating(text) == rating


@pytest.mark.parametrize("text", ["", "0", "6", "10", "55", "我的卡号是5128", "5 apples please", "★" * 6, None, 5,
                                  "5" * 100, "-1", "3.5"])
def test_anything_else_is_not_a_rating(text):
    assert turns.parse_rating(text) is None


def test_unclear_turns_are_counted_back_to_the_last_clear_one_or_a_resume(config):
    events = [user("hi", "greet"), user("?", "nlu_fallback", 0.4), action("action_fallback"),
              user("卡的事", "freeze_card", 0.5), user("now", "out_of_scope")]
    assert turns.unclear_before(events, config) == 2
    assert turns.unclear_before([*events[:3], {"event": "resume"}, events[4]], config) == 0
    assert turns.unclear_before([user("x", "check_balance", 0.99), user("y", "nlu_fallback")], config) == 0
    assert turns.unclear_before([], config) == 0


def test_the_rating_question_is_recognised_only_right_before_the_answer():
    question = {"event": "bot", "text": "请为本次服务打分"}
    asked = [action("action_handoff"), {"event": "resume"}, action("utter_ask_rating"), question]
    assert turns.asked_for_rating([*asked, user("5", "inform")])
    assert turns.asked_for_rating([*asked, action("action_listen"), user("5", "inform")])
    assert not turns.asked_for_rating([*asked, {"event": "bot", "text": "agent: hi"}, user("5", "inform")])
    assert not turns.asked_for_rating([action("utter_greet"), action("action_listen"), user("5", "inform")])
    assert not turns.asked_for_rating([])


def test_the_labelled_routing_set_covers_every_route_in_both_languages():
    doc = yaml.safe_load((PROJECT_ROOT / "data" / "routing_eval" / "turns.yml").read_text(encoding="utf-8"))
    items = doc["turns"]
    assert len(items) >= 100
    counts = Counter((t["route"], t["lang"]) for t in items)
    for route in ROUTES:
        assert counts[(route, "zh")] >= 3 and counts[(route, "en")] >= 3, route


def test_the_turn_a_record_belongs_to_is_the_latest_user_message():
    first = {**user("hi", "greet"), "message_id": "m1", "timestamp": 1.5}
    second = {**user("cards", "freeze_card"), "message_id": "m2", "timestamp": 2.5}
    assert turns.latest_turn([first, action("utter_greet"), second, action("action_listen")]) == {
        "message_id": "m2", "timestamp": 2.5}
    assert turns.latest_turn([first]) == {"message_id": "m1", "timestamp": 1.5}
    assert turns.latest_turn([action("action_listen")]) is None and turns.latest_turn([]) is None
    # a user event that names neither (hand-written) identifies no turn
    assert turns.latest_turn([{"event": "user", "timestamp": float("nan"), "message_id": 7}]) is None
    assert turns.latest_turn([{"event": "user", "timestamp": 3}]) == {"message_id": None, "timestamp": 3.0}


def test_turn_signals_read_the_parse_the_slots_and_the_turns_before(config):
    events = [user("?", "nlu_fallback", 0.4), action("action_fallback"),
              {**user("卡的事", "freeze_card", 0.5), "message_id": "m9"}]
    slots = {"frustration": "0.5", "sentiment": "negative", "kb_source": 3, "language": "zh"}
    signals = turns.turn_signals(events[-1]["parse_data"], slots, events, config, in_form=True)
    assert (signals.intent, signals.confidence, signals.unclear_before) == ("freeze_card", 0.5, 1) and signals.in_form
    assert signals.frustration == 0.5 and signals.sentiment == {"label": "negative"} and signals.kb_source is None
    assert signals.turn == {"message_id": "m9", "timestamp": 5.0}
