"""kefu.contracts: the wire contracts' validation at the boundary (malformed pieces become None)."""

from __future__ import annotations

from typing import get_type_hints

import pytest

from kefu.contracts import (
    HandoffQueued,
    RoutingRecord,
    read_intent,
    read_out_of_scope,
    read_parse,
    read_ranking,
    read_sentiment,
    read_thresholds,
    to_float,
)


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), ("0.5", 0.5), ("nan", None), (float("inf"), None),
                                                 (None, None), ("x", None), ([1], None)])
def test_numbers(value, expected):
    assert to_float(value) == expected


def test_a_parse_result_as_the_components_write_it_passes_unchanged():
    parse = {
        "intent": {"name": "check_balance", "confidence": 0.96},
        "intent_ranking": [{"name": "check_balance", "confidence": 0.96}, {"name": "ask_fees", "confidence": 0.02}],
        "sentiment": {"label": "negative", "score": -0.4, "intensity": "mild", "signals": ["慢"]},
        "intent_thresholds": {"auto": 0.62, "specialist": 0.31, "source": "targets", "fallback": False},
        "out_of_scope": {"score": 0.2, "threshold": 0.88, "flagged": False},
        "entities": [], "text": "余额",
    }
    assert read_parse(parse) == {
        "intent": {"name": "check_balance", "confidence": 0.96},
        "intent_ranking": parse["intent_ranking"],
        "sentiment": parse["sentiment"],
        "intent_thresholds": {"auto": 0.62, "specialist": 0.31, "source": "targets"},
        "out_of_scope": parse["out_of_scope"],
    }


def test_malformed_pieces_are_neutralised():
    assert read_parse(None) == read_parse({}) == {"intent": {"name": None, "confidence": 0.0}, "intent_ranking": [],
                                                  "sentiment": None, "intent_thresholds": None, "out_of_scope": None}
    assert read_intent({"name": 5, "confidence": "nan"}) == {"name": None, "confidence": 0.0}
    assert read_sentiment({"label": "furious"}) is None and read_sentiment("negative") is None
    odd = read_sentiment({"label": "negative", "score": float("nan"), "intensity": "odd", "signals": ["x" * 200] * 20})
    assert odd == {"label": "negative", "score": None, "intensity": None, "signals": ["x" * 80] * 10}
    assert read_thresholds({"auto": 0.5, "specialist": 0.7}) is None  # specialist above auto
    assert read_thresholds({"auto": 1.5, "specialist": 0.7}) is None and read_thresholds([1]) is None
    assert read_thresholds({"auto": 0.9, "specialist": 0.7, "source": 3})["source"] is None
    assert read_out_of_scope({"flagged": "yes"}) is None
    assert read_out_of_scope({"flagged": True, "score": "high"}) == {"score": None, "threshold": None, "flagged": True}
    ranking = [{"name": "a", "confidence": "x"}, "junk", {"name": "b", "confidence": 0.123456}] * 3
    assert read_ranking(ranking, 2) == [{"name": "a", "confidence": 0.0}]  # the first 2 entries, junk skipped
    assert read_ranking(ranking) == [{"name": "a", "confidence": 0.0}, {"name": "b", "confidence": 0.1235},
                                     {"name": "a", "confidence": 0.0}]
    assert read_ranking({"name": "a"}) == [] and read_ranking("abc") == []


def test_the_web_chat_payload_and_the_record_name_the_keys_readers_use():
    # custom_components/channels/socketio.py reads handoff + queue; the widget shows the queue
    assert set(get_type_hints(HandoffQueued)) == {"handoff", "queue", "reason", "ticket", "position", "wait_minutes"}
    required = RoutingRecord.__required_keys__
    assert required == {"route", "queue", "reason", "why", "priority"}
