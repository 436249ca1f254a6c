"""RoutingPolicy on real Rasa trackers and the project's real domain and routing file; the actions
reading its decision from the `routing` slot (decide once)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa_sdk import Tracker

from actions.handoff import route_turn
from custom_components.routing_policy import RoutingPolicy
from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError
from kefu.routing.decision import ROUTING_SLOT
from kefu.routing.settings import load_routing
from tests.actions.handoff_fixtures import routing_file

DOMAIN_DIR = PROJECT_ROOT / "rasa_project" / "domain"
FRUSTRATION_SLOT = """
version: "3.1"
slots:
  frustration:
    type: float
    influence_conversation: false
    mappings: [{type: custom}]
"""


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(DOMAIN_DIR))


def make_policy(tmp_path: Path, **config: Any) -> RoutingPolicy:
    return RoutingPolicy.create(
        {**RoutingPolicy.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource("routing"),
        ExecutionContext(GraphSchema({}), "test"),
    )


@pytest.fixture
def policy(tmp_path) -> RoutingPolicy:
    return make_policy(tmp_path)


def user(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> list:
    parse = {"intent": {"name": intent, "confidence": confidence},
             "intent_ranking": [{"name": intent, "confidence": confidence}], "entities": [], "text": text, **extra}
    return [UserUttered(text, parse_data=parse)]


def turn_after(*earlier: list, slots: Optional[list] = None) -> list:
    events: list = [ActionExecuted("action_listen")]
    for chunk in earlier:
        events += chunk
    return events + (slots or [])


def predicted(policy: RoutingPolicy, domain: Domain, events: list) -> Optional[str]:
    tracker = DialogueStateTracker.from_events("c1", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    if max(prediction.probabilities) == 0:
        return None
    assert prediction.policy_priority == 5
    return domain.action_names_or_texts[prediction.max_confidence_index]


def test_abstains_when_the_bot_should_answer(policy, domain):
    assert predicted(policy, domain, turn_after(user("冻结卡", "freeze_card", 0.97))) is None
    assert predicted(policy, domain, turn_after(user("hi", "greet", 0.8))) is None
    # barely recognised small talk gets the clarifying question
    assert predicted(policy, domain, turn_after(user("asdkjh qwe", "thanks", 0.53))) == "action_fallback"


def test_specialist_band_hands_over(policy, domain):
    assert predicted(policy, domain, turn_after(user("how much can I send", "transfer_limit", 0.8))) == "action_handoff"


def test_low_confidence_asks_once_then_hands_over(policy, domain):
    first = turn_after(user("卡的事", "freeze_card", 0.55))
    assert predicted(policy, domain, first) == "action_fallback"
    second = [*first, ActionExecuted("action_fallback"), ActionExecuted("action_listen"),
              *user("就是卡", "unfreeze_card", 0.5)]
    assert predicted(policy, domain, second) == "action_handoff"


def test_fallback_and_explicit_intents_are_left_to_the_rules(policy, domain):
    for intent in ("nlu_fallback", "out_of_scope", "ask_human", "complain", "insult"):
        assert predicted(policy, domain, turn_after(user("x", intent, 0.99))) is None, intent


def test_anger_goes_to_a_person_whatever_the_intent(policy, domain):
    strong = {"sentiment": {"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["垃圾"]}}
    assert predicted(policy, domain, turn_after(user("谢谢你们啊垃圾", "thanks", 0.99, **strong))) == "action_handoff"
    frustrated = turn_after(user("what are the fees", "ask_fees", 0.99), slots=[SlotSet("frustration", 1.0)])
    if not any(slot.name == "frustration" for slot in domain.slots):  # until the sentiment domain lands
        domain = domain.merge(Domain.from_yaml(FRUSTRATION_SLOT))
    assert predicted(policy, domain, frustrated) == "action_handoff"
    calmer = turn_after(user("what are the fees", "ask_fees", 0.99), slots=[SlotSet("frustration", 0.5)])
    assert predicted(policy, domain, calmer) is None


def test_anger_in_a_form_outranks_the_form(policy, domain):
    strong = {"sentiment": {"label": "negative", "score": -0.95, "intensity": "strong", "signals": []}}
    events = [ActionExecuted("action_listen"), *user("卡丢了", "report_lost_card", 0.99),
              ActionExecuted("lost_card_form"), ActiveLoop("lost_card_form"), SlotSet("requested_slot", "card_last4"),
              ActionExecuted("action_listen"), *user("你们这什么破系统", "inform", 0.4, **strong)]
    tracker = DialogueStateTracker.from_events("c1", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert domain.action_names_or_texts[prediction.max_confidence_index] == "action_handoff"
    assert prediction.is_no_user_prediction
    calm = events[:-1] + user("1234", "inform", 0.4)
    assert predicted(policy, domain, calm) is None


def test_rating_answer_after_the_rating_question(policy, domain):
    asked = [ActionExecuted("action_listen"), *user("转人工", "ask_human", 0.99), ActionExecuted("action_handoff"),
             ConversationPaused(), ConversationResumed(), ActionExecuted("utter_ask_rating"),
             BotUttered("请为本次服务打分：1-5分"), ActionExecuted("action_listen")]
    assert predicted(policy, domain, asked + user("5", "inform", 0.4)) == "action_rate"
    assert predicted(policy, domain, asked + user("四星", "inform", 0.4)) == "action_rate"
    # not a rating: normal routing (the bot answers a confident question)
    assert predicted(policy, domain, asked + user("how do I freeze my card", "freeze_card", 0.97)) is None
    # a bare "5" out of the blue, barely recognised as inform: one clarifying question
    assert predicted(policy, domain, turn_after(user("5", "inform", 0.4))) == "action_fallback"
    assert predicted(policy, domain, turn_after(user("5", "inform", 0.95))) is None


def test_listens_after_its_own_actions(policy, domain):
    for action in ("action_handoff", "action_fallback", "action_rate"):
        events = turn_after(user("x", "ask_human")) + [ActionExecuted(action)]
        assert predicted(policy, domain, events) == "action_listen"


def test_a_message_after_the_resume_is_a_user_turn_not_a_follow_up(policy, domain):
    handed = turn_after(user("x", "ask_human")) + [ActionExecuted("action_handoff"), ConversationPaused(),
                                                 ConversationResumed()]
    assert predicted(policy, domain, handed) == "action_listen"
    assert predicted(policy, domain, handed + user("how much can I send", "transfer_limit", 0.8)) == "action_handoff"
    assert predicted(policy, domain, handed + user("freeze my card", "freeze_card", 0.97)) is None


def test_paused_and_external_turns_are_ignored(policy, domain):
    paused = turn_after(user("x", "ask_human")) + [ConversationPaused(), ActionExecuted("action_listen")]
    assert predicted(policy, domain, paused + user("hello?", "transfer_limit", 0.8)) is None
    assert predicted(policy, domain, turn_after(user("", "EXTERNAL_ping", 1.0))) is None
    assert predicted(policy, domain, [ActionExecuted("action_listen")]) is None


def test_a_broken_routing_edit_disables_routing_instead_of_crashing(tmp_path, domain):
    routing = tmp_path / "routing.yml"
    routing.write_text((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"), encoding="utf-8")
    policy = make_policy(tmp_path, routing_file=str(routing))
    events = turn_after(user("how much can I send", "transfer_limit", 0.8))
    assert predicted(policy, domain, events) == "action_handoff"
    routing.write_text("auto_threshold: [", encoding="utf-8")
    assert predicted(policy, domain, events) is None
    with pytest.raises(ConfigError):
        make_policy(tmp_path, routing_file=str(tmp_path / "missing.yml"))


@pytest.fixture
def always_open(tmp_path) -> Path:
    """The project's routing file with every queue open (the decisions must not depend on the clock)."""
    return routing_file(tmp_path)


def test_a_winning_prediction_hands_its_record_to_the_actions(tmp_path, always_open, domain):
    policy = make_policy(tmp_path, routing_file=str(always_open))
    events = turn_after(user("how much can I send", "transfer_limit", 0.8))
    tracker = DialogueStateTracker.from_events("c1", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    (slot,) = prediction.optional_events
    record = slot.value
    assert slot.key == ROUTING_SLOT and (record["route"], record["queue"], record["reason"]) == (
        "specialist", "payments", "specialist")
    latest = events[-1]
    assert record["turn"] == {"message_id": latest.message_id, "timestamp": latest.timestamp}
    assert prediction.events == [] and prediction.diagnostic_data == {"route": record}
    # abstaining, listening after its own action, or answering a rating: nothing to hand on
    for quiet in (turn_after(user("冻结卡", "freeze_card", 0.97)), events + [ActionExecuted("action_handoff")]):
        tracker = DialogueStateTracker.from_events("c1", quiet, domain.slots)
        assert policy.predict_action_probabilities(tracker, domain).optional_events == []


def sdk_tracker(tracker: DialogueStateTracker) -> Tracker:
    """The tracker as the action server receives it (JSON over HTTP)."""
    return Tracker.from_dict(json.loads(json.dumps(tracker.current_state(EventVerbosity.ALL))))


@pytest.mark.parametrize(
    "turn",
    [
        user("how much can I send", "transfer_limit", 0.8),
        user("卡的事", "freeze_card", 0.55),
        user("谢谢你们啊垃圾", "thanks", 0.99,
             sentiment={"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["垃圾"]}),
        user("write me a poem", "check_balance", 0.97, out_of_scope={"score": 0.99, "threshold": 0.9, "flagged": True}),
    ],
)
def test_the_actions_use_the_policys_decision_and_would_have_made_the_same(tmp_path, always_open, domain, turn):
    policy = make_policy(tmp_path, routing_file=str(always_open))
    tracker = DialogueStateTracker.from_events("c1", turn_after(turn), domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    tracker.update_with_events(prediction.optional_events, domain)
    (recorded,) = [e.value for e in prediction.optional_events]
    config = load_routing(always_open)
    used = route_turn(sdk_tracker(tracker), config)
    assert used.record == recorded and (used.route, used.queue, used.reason) == (
        recorded["route"], recorded["queue"], recorded["reason"])
    # without the record (a rule sent the turn) the action decides the same way
    tracker.update(SlotSet(ROUTING_SLOT, None))
    again = route_turn(sdk_tracker(tracker), config)
    assert (again.route, again.queue, again.reason, again.priority) == (used.route, used.queue, used.reason,
                                                                        used.priority)


def test_a_record_of_an_earlier_turn_is_never_reused(tmp_path, always_open, domain):
    policy = make_policy(tmp_path, routing_file=str(always_open))
    events = turn_after(user("how much can I send", "transfer_limit", 0.8))
    tracker = DialogueStateTracker.from_events("c1", events, domain.slots)
    tracker.update_with_events(policy.predict_action_probabilities(tracker, domain).optional_events, domain)
    later = [ActionExecuted("action_handoff"), ActionExecuted("action_listen"), *user("转人工", "ask_human", 0.99)]
    tracker.update_with_events(later, domain)
    assert tracker.get_slot(ROUTING_SLOT)["reason"] == "specialist"  # still set, but about the earlier message
    decision = route_turn(sdk_tracker(tracker), load_routing(always_open))
    assert (decision.route, decision.queue, decision.reason) == ("human", "general", "explicit_request")


def test_training_checks_the_routing_files_intents_against_the_domain(tmp_path, domain, caplog):
    policy = make_policy(tmp_path)
    with caplog.at_level(logging.WARNING, logger="custom_components.routing_policy"):
        policy.train([], domain)
    assert caplog.records == []  # every domain intent is routed by a group or list
    raw = yaml.safe_load((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"))
    raw["groups"]["cards"]["intents"].append("freez_card")
    bad = tmp_path / "routing.yml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{bad}.*'freez_card' \(the intents of cards\)"):
        make_policy(tmp_path, routing_file=str(bad)).train([], domain)
    # a domain intent nothing routes is a warning, not an error
    raw["groups"]["cards"]["intents"].remove("freez_card")
    raw["groups"]["loans"]["intents"] = []
    raw["faq_intents"].remove("loan_info")
    raw["topics"].pop("loan_info")
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    os.utime(bad, (1_000_000_000, 1_000_000_000))
    with caplog.at_level(logging.WARNING, logger="custom_components.routing_policy"):
        make_policy(tmp_path, routing_file=str(bad)).train([], domain)
    assert "loan_info" in caplog.text and "freeze_card" not in caplog.text


def test_an_edited_routing_file_reruns_training(tmp_path):
    routing = tmp_path / "routing.yml"
    routing.write_text((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"), encoding="utf-8")
    before = RoutingPolicy.fingerprint_addon({"routing_file": str(routing)})
    routing.write_text(routing.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert before and RoutingPolicy.fingerprint_addon({"routing_file": str(routing)}) != before
    assert RoutingPolicy.fingerprint_addon({"routing_file": str(tmp_path / "missing.yml")}) is None


def one_leaf_tree(path: Path, route: str) -> str:
    """A tree file that always predicts `route`; returns its digest."""
    from kefu.routing.features import FEATURES
    from kefu.routing.tree import digest_of, dumps

    data = dumps({"version": 1, "features": list(FEATURES), "classes": [route], "trained": {},
                  "nodes": {"feature": [-1], "threshold": [0.0], "left": [-1], "right": [-1], "value": [[3.0]],
                            "support": [3], "accuracy": [1.0]}})
    path.write_bytes(data)
    return digest_of(data)


def test_an_approved_tree_decides_in_the_policy_and_its_path_reaches_the_actions(tmp_path, domain):
    digest = one_leaf_tree(tmp_path / "tree.json", "specialist")
    approved = {"file": "tree.json", "approval": {"by": "t", "at": "2026-12-04T20:00:00+00:00", "digest": digest}}
    policy = make_policy(tmp_path, routing_file=str(routing_file(tmp_path, router="tree", tree=approved)))
    events = turn_after(user("我的房贷提前还款违约金怎么算", "loan_info", 0.98))
    tracker = DialogueStateTracker.from_events("c1", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    (slot,) = prediction.optional_events
    record = slot.value
    assert (record["router"], record["route"], record["queue"]) == ("tree", "specialist", "loans")
    assert record["why"] == record["path"] == "no test → specialist (leaf of 3 training turns, 100% right)"
    assert record["features"]["turn_count"] == 1.0 and record["features"]["words"] == 14.0
    # the guard rail still wins: an explicit request is left to the rules (action_handoff → general)
    assert predicted(policy, domain, turn_after(user("转人工", "ask_human", 0.99))) is None


def test_an_unapproved_tree_leaves_the_cascade_deciding_in_the_policy(tmp_path, domain):
    one_leaf_tree(tmp_path / "tree.json", "specialist")
    unapproved = {"file": "tree.json", "approval": None}
    policy = make_policy(tmp_path, routing_file=str(routing_file(tmp_path, router="tree", tree=unapproved)))
    assert predicted(policy, domain, turn_after(user("冻结卡", "freeze_card", 0.97))) is None  # the cascade: bot
