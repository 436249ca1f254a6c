"""Reading conversation events for routing and tickets; the labelled routing set's shape."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from handoff import turns
from handoff.routing import ROUTES
from handoff.routing_config import load_routing
from kefu.config import PROJECT_ROOT


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


def test_transcript_trend_and_ranking_are_bounded_and_json_safe():
    events = [user("x" * 5000, "greet", sentiment={"label": "negative", "score": float("nan"), "intensity": "odd"})]
    events += [{"event": "bot", "text": f"answer {n}", "timestamp": n} for n in range(30)]
    events += [{"event": "bot", "text": None}, {"event": "slot", "name": "a", "value": 1}]
    lines = turns.transcript(events)
    assert len(lines) == turns.TRANSCRIPT_TURNS and lines[-1] == {"role": "bot", "text": "answer 29", "ts": 29.0}
    assert len(turns.transcript(events, limit=100)[0]["text"]) == turns.TRANSCRIPT_CHARS
    (trend,) = turns.sentiment_trend(events)
    assert trend == {"label": "negative", "score": 0.0, "intensity": "none", "ts": 5.0}
    ranking = turns.intent_ranking({"intent_ranking": [{"name": "a", "confidence": "x"}, "junk", {"name": "b"}]})
    assert ranking == [{"name": "a", "confidence": 0.0}, {"name": "b", "confidence": 0.0}]


def test_the_labelled_routing_set_covers_every_route_in_both_languages():
    doc = yaml.safe_load((PROJECT_ROOT / "data" / "routing_eval" / "turns.yml").read_text(encoding="utf-8"))
    items = doc["turns"]
    assert len(items) >= 100
    counts = Counter((t["route"], t["lang"]) for t in items)
    for route in ROUTES:
        assert counts[(route, "zh")] >= 3 and counts[(route, "en")] >= 3, route
