"""RoutingPolicy on real Rasa trackers and the project's real domain and routing file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
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
from rasa.shared.core.trackers import DialogueStateTracker

from custom_components.routing_policy import RoutingPolicy
from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError

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
