"""Routing decisions, the routing YAML and business hours (pure logic, the real data/routing.yml)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError
from kefu.routing.decision import RouteDecision, TurnSignals, decide, is_unclear, with_capacity
from kefu.routing.hours import Hours, Staffing, wait_minutes
from kefu.routing.queues import handoff_response, plan_handoff
from kefu.routing.settings import load_routing, parse_routing

ROUTING = PROJECT_ROOT / "data" / "routing.yml"
# Wednesday 2026-11-25 11:00 in Shanghai (03:00 UTC): every queue is open
OPEN = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
# Wednesday 23:30 in Shanghai: only the senior queue (24/7) is open
NIGHT = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def config():
    return load_routing(ROUTING)


def raw_config() -> dict:
    return yaml.safe_load(ROUTING.read_text(encoding="utf-8"))


def turn(intent, confidence=0.95, **kw) -> TurnSignals:
    return TurnSignals(intent=intent, confidence=confidence, **kw)


@pytest.mark.parametrize(
    ("signals", "route", "queue", "reason"),
    [
        (turn("check_balance", 0.95), "bot", None, "confident"),
        (turn("check_balance", 0.9), "bot", None, "confident"),
        (turn("check_balance", 0.8), "specialist", "accounts", "specialist"),
        (turn("freeze_card", 0.7), "specialist", "cards", "specialist"),
        (turn("refund_status", 0.75), "specialist", "refunds", "specialist"),
        # self-service forms check the details themselves: a middling score still starts them
        (turn("report_lost_card", 0.7), "bot", None, "self_service"),
        (turn("order_status", 0.86), "bot", None, "self_service"),
        (turn("return_item", 0.69), "clarify", None, "low_confidence"),
        (turn("check_balance", 0.69), "clarify", None, "low_confidence"),
        (turn("nlu_fallback", 0.3), "clarify", None, "low_confidence"),
        (turn("out_of_scope", 0.99), "clarify", None, "out_of_scope"),
        (turn("out_of_scope", 0.99, unclear_before=1), "human", "general", "out_of_scope"),
        (turn("nlu_fallback", 0.3, unclear_before=1), "human", "general", "two_fallbacks"),
        (turn("check_balance", 0.6, unclear_before=1), "human", "general", "low_confidence"),
        (turn("check_balance", 0.95, unclear_before=1), "bot", None, "confident"),
        (turn("ask_human", 0.99), "human", "general", "explicit_request"),
        (turn("complain", 0.99), "human", "general", "complaint"),
        (turn("insult", 0.99), "senior", "senior", "angry"),
        (turn("check_balance", 0.99, frustration=1.0), "senior", "senior", "angry"),
        (turn("thanks", 0.99, sentiment={"label": "negative", "intensity": "strong", "score": -0.9}),
         "senior", "senior", "angry"),
        (turn("greet", 0.99, sentiment={"label": "negative", "intensity": "mild", "score": -0.7}),
         "bot", None, "conversational"),
        (turn("greet", 0.99, sentiment={"label": "negative", "intensity": "mild", "score": -0.3}),
         "bot", None, "conversational"),
        (turn("ask_human", 0.99, frustration=1.0), "senior", "senior", "angry"),
        (turn("greet", 0.75), "bot", None, "conversational"),
        # small talk the classifier barely recognises (gibberish → "thanks" at 0.53) is unclear
        (turn("thanks", 0.53), "clarify", None, "low_confidence"),
        (turn("affirm", 0.6, unclear_before=1), "human", "general", "low_confidence"),
        (turn("inform", 0.3, in_form=True), "bot", None, "in_form"),
        (turn("inform", 0.3, in_form=True, frustration=1.0), "senior", "senior", "angry"),
        # loans is semi-auto: FAQ questions are answered when confident, nothing else is
        (turn("loan_info", 0.95), "bot", None, "confident"),
    ],
)
def test_every_branch_of_the_decision(config, signals, route, queue, reason):
    decision = decide(signals, config, now=OPEN)
    assert (decision.route, decision.queue, decision.reason) == (route, queue, reason)
    assert decision.record["route"] == route and decision.record["why"]
    # no model thresholds in these signals: the YAML's numeric defaults, and the record says so
    thresholds = decision.record["thresholds"]
    assert (thresholds["auto"], thresholds["specialist"]) == (0.9, 0.7) and "retrain" in thresholds["source"]


def test_the_record_explains_the_decision(config):
    signals = TurnSignals.from_parse(
        {
            "intent": {"name": "transfer_limit", "confidence": 0.81},
            "intent_ranking": [{"name": "transfer_limit", "confidence": 0.81}, {"name": "ask_fees", "confidence": 0.1}],
            "sentiment": {"label": "negative", "score": -0.2, "intensity": "mild", "signals": ["?"]},
        },
        {"frustration": "0.5", "kb_source": "faq", "kb_confidence": 0.4},
    )
    decision = decide(signals, config, now=OPEN)
    assert (decision.route, decision.queue, decision.priority) == ("specialist", "payments", 30)
    record = decision.record
    assert record["confidence"] == 0.81 and record["ranking"][1]["name"] == "ask_fees"
    assert record["sentiment"]["score"] == -0.2 and record["frustration"] == 0.5
    assert record["kb"] == {"source": "faq", "confidence": 0.4}
    assert record["automation_level"] == "full-auto" and record["group"] == "payments"
    assert record["hours"]["open"] is True and record["config"] == config.digest


def test_an_optional_sentiment_score_threshold():
    raw = raw_config()
    raw["senior"]["sentiment_score"] = -0.6
    strict = parse_routing(raw)
    mild = turn("greet", 0.99, sentiment={"label": "negative", "intensity": "mild", "score": -0.7})
    decision = decide(mild, strict, now=OPEN)
    assert (decision.route, decision.record["why"]) == ("senior", "sentiment score -0.70 <= -0.6")
    assert decide(turn("greet", 0.99, sentiment={"label": "negative", "score": -0.5}), strict, now=OPEN).route == "bot"
    raw["senior"]["sentiment_score"] = -2
    with pytest.raises(ConfigError, match="sentiment_score"):
        parse_routing(raw)


def test_missing_or_malformed_signals_count_as_neutral(config):
    signals = TurnSignals.from_parse({"intent": {"name": "check_balance", "confidence": "nan"}, "sentiment": "bad"},
                                     {"frustration": "very", "sentiment": "furious"})
    assert signals.confidence == 0.0 and signals.frustration is None and signals.sentiment is None
    assert decide(signals, config, now=OPEN).route == "clarify"
    empty = TurnSignals.from_parse({}, {})
    assert empty.intent is None and decide(empty, config, now=OPEN).route == "clarify"
    # the sentiment slot alone (label, no intensity) is not "strong negative"
    label_only = TurnSignals.from_parse({"intent": {"name": "greet", "confidence": 1.0}}, {"sentiment": "negative"})
    assert decide(label_only, config, now=OPEN).route == "bot"


def test_outside_business_hours_a_handoff_becomes_a_callback(config):
    decision = decide(turn("check_balance", 0.8), config, now=NIGHT)
    assert (decision.route, decision.queue, decision.reason) == ("callback", "accounts", "callback")
    assert decision.record["original_reason"] == "specialist" and decision.record["hours"]["open"] is False
    # the senior queue is staffed around the clock; the bot keeps answering at night
    assert decide(turn("insult"), config, now=NIGHT).route == "senior"
    assert decide(turn("check_balance", 0.95), config, now=NIGHT).route == "bot"
    # loans work mon-fri 09:00-18:00 Shanghai: Saturday noon is closed
    saturday = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
    assert decide(turn("loan_info", 0.8), config, now=saturday).route == "callback"


def test_a_full_queue_becomes_a_callback(config):
    decision = decide(turn("ask_human"), config, now=OPEN)
    assert with_capacity(decision, 29, config).route == "human"
    full = with_capacity(decision, 30, config)
    assert (full.route, full.reason) == ("callback", "callback")
    assert full.record["capacity"] == {"waiting": 30, "max_waiting": 30}
    bot = decide(turn("greet"), config, now=OPEN)
    assert with_capacity(bot, 1000, config) is bot


def test_automation_levels():
    raw = raw_config()
    raw["automation_level"] = "assist"
    assist = parse_routing(raw)
    assert (decide(turn("check_balance", 0.99), assist, now=OPEN).route, "accounts") == ("specialist", "accounts")
    greet = decide(turn("greet", 0.99), assist, now=OPEN)
    assert (greet.route, greet.queue, greet.reason) == ("human", "general", "assist")
    assert decide(turn("insult"), assist, now=OPEN).route == "senior"
    raw["automation_level"] = "semi-auto"
    semi = parse_routing(raw)
    assert decide(turn("check_balance", 0.99), semi, now=OPEN).route == "bot"  # an FAQ question
    lost = decide(turn("report_lost_card", 0.99), semi, now=OPEN)  # a transaction, not an FAQ
    assert (lost.route, lost.queue) == ("specialist", "cards")
    kb = decide(turn("report_lost_card", 0.99, kb_source="graph", kb_confidence=0.95), semi, now=OPEN)
    assert kb.route == "bot"
    # a group's own level overrides the deployment's
    raw["automation_level"] = "full-auto"
    raw["groups"]["cards"]["automation_level"] = "assist"
    mixed = parse_routing(raw)
    assert decide(turn("freeze_card", 0.99), mixed, now=OPEN).route == "specialist"
    assert decide(turn("check_balance", 0.99), mixed, now=OPEN).route == "bot"


OOS = {"score": 0.99, "threshold": 0.93, "flagged": True}


def test_an_out_of_scope_message_gets_one_clarifying_question_then_a_person(config):
    # the classifier flags it although its forced-choice intent is confident
    first = decide(turn("check_balance", 0.97, out_of_scope=OOS), config, now=OPEN)
    assert (first.route, first.reason) == ("clarify", "out_of_scope")
    assert first.record["out_of_scope"] == OOS and "out-of-scope score" in first.record["why"]
    second = decide(turn("ask_fees", 0.95, out_of_scope=OOS, unclear_before=1), config, now=OPEN)
    assert (second.route, second.queue, second.reason) == ("human", "general", "out_of_scope")
    # an unflagged score changes nothing; small talk is never sent away for being unusual
    calm = {**OOS, "flagged": False}
    assert decide(turn("check_balance", 0.97, out_of_scope=calm), config, now=OPEN).reason == "confident"
    assert decide(turn("greet", 0.97, out_of_scope=OOS), config, now=OPEN).route == "bot"
    # the flag counts as an unclear turn for the next one
    assert is_unclear(turn("check_balance", 0.97, out_of_scope=OOS), config)


def test_out_of_scope_from_the_parse_result_reaches_the_human_path(config):
    parse = {"intent": {"name": "check_balance", "confidence": 0.96},
             "intent_thresholds": {"auto": 0.62, "specialist": 0.31, "source": "targets"},
             "out_of_scope": {"score": 0.998, "threshold": 0.95, "flagged": True}}
    signals = TurnSignals.from_parse(parse, {}, unclear_before=1)
    decision = decide(signals, config, now=OPEN)
    assert (decision.route, decision.reason) == ("human", "out_of_scope")
    hostile = TurnSignals.from_parse({**parse, "out_of_scope": {"flagged": "yes"}, "intent_thresholds": [1]}, {})
    assert hostile.out_of_scope is None and hostile.thresholds is None


def test_target_mode_uses_the_models_thresholds_and_numbers_stay_live(config):
    assert config.targets.uses_targets  # data/routing.yml sets auto_precision / specialist_precision
    model = {"auto": 0.62, "specialist": 0.31, "source": "targets"}
    bot = decide(turn("check_balance", 0.7, thresholds=model), config, now=OPEN)
    assert bot.reason == "confident" and bot.record["thresholds"]["auto"] == 0.62
    assert bot.record["thresholds"]["source"] == "model (targets)"
    spec = decide(turn("check_balance", 0.5, thresholds=model), config, now=OPEN)
    assert (spec.route, spec.queue) == ("specialist", "accounts")
    assert decide(turn("check_balance", 0.2, thresholds=model), config, now=OPEN).reason == "low_confidence"
    # no thresholds in the parse (a model trained before calibration): the YAML numbers
    assert decide(turn("check_balance", 0.7), config, now=OPEN).route == "specialist"
    # numbers mode: the model's thresholds are ignored, the YAML numbers apply
    raw = raw_config()
    del raw["auto_precision"], raw["specialist_precision"], raw["intent_thresholds"]
    numbers = parse_routing(raw)
    assert decide(turn("check_balance", 0.7, thresholds=model), numbers, now=OPEN).route == "specialist"
    # a numeric per-intent override applies live, in either mode
    raw["intent_thresholds"] = {"check_balance": {"auto_threshold": 0.6}}
    assert decide(turn("check_balance", 0.65, thresholds=model), parse_routing(raw), now=OPEN).route == "bot"


def test_unclear_turns(config):
    def unclear(intent, confidence):
        return is_unclear(TurnSignals(intent, confidence), config)

    assert unclear("nlu_fallback", 0.9) and unclear(None, 1.0)
    assert unclear("check_balance", 0.5) and not unclear("check_balance", 0.7)
    assert not unclear("greet", 0.95) and not unclear("ask_human", 0.2)
    assert unclear("greet", 0.1)  # below the specialist threshold even small talk was not understood


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"auto_threshold": 1.5}, "auto_threshold"),
        ({"auto_threshold": "high"}, "auto_threshold"),
        ({"specialist_threshold": 0.95}, "must not exceed"),
        ({"automation_level": "manual"}, "automation_level"),
        ({"surprise": 1}, "unknown keys"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"defaults": {"hours": {"open": "25:00"}}}, "time of day"),
        ({"defaults": {"hours": {"days": "someday"}}}, "unknown day"),
        ({"defaults": {"agents": 0}}, "agents"),
        ({"priorities": {"angry": "high"}}, "priorities"),
        ({"groups": {"a": {"intents": ["x"]}, "b": {"intents": ["x"]}}}, "in both"),
        ({"groups": {"cards": {"intents": "freeze_card"}}}, "list of names"),
        ({"groups": {"cards": {"colour": "red"}}}, "unknown keys"),
        ({"groups": ["cards"]}, "mapping"),
        ({"auto_precision": 1.5}, "auto_precision must be a number in"),
        ({"specialist_precision": 0.99}, "specialist_precision .0.99. must not exceed auto_precision"),
        ({"intent_thresholds": {"freeze_card": {"auto_precision": 0}}}, "intent_thresholds.freeze_card.auto_precision"),
    ],
)
def test_bad_routing_files_are_refused_with_the_key_named(change, message):
    raw = raw_config()
    raw.update(change)
    with pytest.raises(ConfigError, match=message):
        parse_routing(raw)


def test_load_routing_rejects_unreadable_and_reloads_on_change(tmp_path: Path):
    with pytest.raises(ConfigError):
        load_routing(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("auto_threshold: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_routing(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load_routing(bad)
    empty = tmp_path / "empty.yml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_routing(empty)
    path = tmp_path / "routing.yml"
    path.write_text(ROUTING.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_routing(path).auto_threshold == 0.9
    path.write_text(ROUTING.read_text(encoding="utf-8").replace("auto_threshold: 0.9", "auto_threshold: 0.95"))
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert load_routing(path).auto_threshold == 0.95


def test_hours_and_wait_estimates():
    weekdays = Hours.parse({"days": "mon-fri", "open": "09:00", "close": "18:00"}, "Asia/Shanghai", "t")
    assert weekdays.is_open(OPEN) and not weekdays.is_open(NIGHT)
    assert weekdays.describe() == "mon-fri 09:00-18:00"
    overnight = Hours.parse({"days": "fri", "open": "22:00", "close": "06:00"}, "UTC", "t")
    assert overnight.is_open(datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc))  # Friday night
    assert overnight.is_open(datetime(2026, 11, 28, 5, 0, tzinfo=timezone.utc))  # Saturday morning, Friday's shift
    assert not overnight.is_open(datetime(2026, 11, 28, 23, 0, tzinfo=timezone.utc))  # Saturday night
    holiday = Hours.parse({"closed_dates": ["2026-11-25"]}, "UTC", "t")
    assert not holiday.is_open(OPEN) and Hours.parse({"always": True}, "UTC", "t").describe() == "24/7"
    assert Hours.parse({"days": "sat-mon"}, "UTC", "t").days == frozenset({5, 6, 0})
    staffing = Staffing(agents=2, handle_seconds=300)
    assert staffing.expected_wait_seconds(1) == 300 and staffing.expected_wait_seconds(3) == 600
    assert staffing.expected_wait_seconds(3, handle_seconds=60) == 120
    assert wait_minutes(1) == 1 and wait_minutes(600) == 10


def test_handoff_responses_exist_for_every_reason():
    assert plan_handoff("insult").queue == "senior" and plan_handoff("ask_human").reason == "explicit_request"
    assert handoff_response("angry") == "utter_handoff_senior" and handoff_response("whatever") == "utter_handoff"


TURN = {"message_id": "m1", "timestamp": 1_700_000_000.5}


def test_a_record_rebuilds_its_decision_only_for_its_own_turn(config):
    signals = TurnSignals("check_balance", 0.8, turn=TURN)
    decision = decide(signals, config, now=NIGHT)  # a callback: priority is the original reason's
    assert decision.record["turn"] == TURN and decision.record["priority"] == decision.priority == 30
    again = RouteDecision.from_record(json.loads(json.dumps(decision.record)), dict(TURN))
    assert again == decision
    # another user message, no turn, or a record someone else wrote: decide again
    assert RouteDecision.from_record(decision.record, {**TURN, "message_id": "m2"}) is None
    assert RouteDecision.from_record(decision.record, {**TURN, "timestamp": 1.0}) is None
    assert RouteDecision.from_record(decision.record, None) is None
    assert RouteDecision.from_record(decide(turn("ask_human"), config, now=OPEN).record, TURN) is None  # turn None
    for broken in ({"route": "moon"}, {"priority": "high"}, {"priority": True}, {"reason": None}, {"queue": 3}):
        assert RouteDecision.from_record({**decision.record, **broken}, TURN) is None
    assert RouteDecision.from_record("a string", TURN) is None and RouteDecision.from_record(None, TURN) is None
