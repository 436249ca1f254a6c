"""action_fallback: one clarifying question, then a person (tickets in a real PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

from rasa_sdk.executor import CollectingDispatcher

from actions.routing import ActionFallback, consecutive_fallbacks
from handoff.tickets import TicketStore
from kefu.routing.decision import TurnSignals, decide
from kefu.routing.settings import load_routing
from tests.actions.conftest import make_tracker, user_event
from tests.actions.handoff_fixtures import USER_TIMESTAMP, tracker, user


def test_counts_only_the_trailing_run_of_fallbacks():
    history = [user_event("?", "nlu_fallback"), user_event("hi", "greet"), user_event("天气", "out_of_scope")]
    assert consecutive_fallbacks(make_tracker("nlu_fallback", history=history)) == 2
    assert consecutive_fallbacks(make_tracker("greet", history=history)) == 0


async def test_first_fallback_asks_to_rephrase(domain, dispatcher):
    await ActionFallback().run(dispatcher, make_tracker("nlu_fallback", history=[user_event("hi", "greet")]), domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_rephrase"]


async def test_first_out_of_scope_explains_the_scope(domain, dispatcher):
    await ActionFallback().run(dispatcher, make_tracker("out_of_scope"), domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_out_of_scope"]


async def test_a_low_confidence_question_is_clarified_with_its_likely_topic(domain, dispatcher):
    await ActionFallback().run(dispatcher, tracker("卡那个事", "freeze_card", 0.55), domain)
    (message,) = dispatcher.messages
    assert message["response"] == "utter_clarify" and message["topic"] == "冻结银行卡"
    english = CollectingDispatcher()
    await ActionFallback().run(english, tracker("card thing", "freeze_card", 0.55, slots={"language": "en"}), domain)
    assert english.messages[0]["topic"] == "freezing a card"
    # an NLU fallback names the best real intent of the ranking when it is not too weak
    fallback = tracker("嗯卡", "nlu_fallback", 0.5, intent_ranking=[{"name": "nlu_fallback", "confidence": 0.5},
                                                                  {"name": "loan_info", "confidence": 0.42}])
    named = CollectingDispatcher()
    await ActionFallback().run(named, fallback, domain)
    assert (named.messages[0]["response"], named.messages[0]["topic"]) == ("utter_clarify", "贷款")


async def test_second_fallback_in_a_row_hands_over(handoff_env, domain, dispatcher):
    t = tracker("asdf again", "out_of_scope", 0.99, sender="twice", history=[user("asdf", "nlu_fallback", 0.3)])
    events = await ActionFallback().run(dispatcher, t, domain)
    assert events[-1]["event"] == "pause"
    assert dispatcher.messages[0]["response"] == "utter_handoff_fallback"
    # the second unclear turn is out of scope: the ticket says so
    assert (dispatcher.messages[0]["custom"]["queue"], dispatcher.messages[0]["custom"]["reason"]) == (
        "general", "out_of_scope")
    async with TicketStore(handoff_env) as store:
        (ticket,) = await store.list_open()
    assert ticket.reason_detail["unclear_before"] == 1 and ticket.priority == 40


async def test_clarify_then_low_confidence_again_goes_to_the_general_queue(handoff_env, domain, dispatcher):
    history = [user("卡那个事", "freeze_card", 0.55), {"event": "action", "name": "action_fallback"}]
    await ActionFallback().run(dispatcher, tracker("就是那个", "unfreeze_card", 0.5, history=history), domain)
    assert dispatcher.messages[0]["custom"]["reason"] == "low_confidence"


async def test_an_angry_fallback_goes_to_senior_agents(handoff_env, domain, dispatcher):
    angry = {"sentiment": {"label": "negative", "score": -0.9, "intensity": "strong", "signals": []}}
    await ActionFallback().run(dispatcher, tracker("???!!! 废物", "nlu_fallback", 0.4, **angry), domain)
    assert dispatcher.messages[0]["response"] == "utter_handoff_senior"
    assert dispatcher.messages[0]["custom"]["queue"] == "senior"


FLAGGED = {"score": 0.99, "threshold": 0.88, "flagged": True}


async def test_a_message_flagged_out_of_scope_gets_the_out_of_scope_reply_then_a_person(handoff_env, domain):
    # the classifier forced a confident intent, but the out-of-scope score says it fits none
    first = CollectingDispatcher()
    t = tracker("帮我写一首关于猫的诗", "product_question", 0.96, sender="oos-1", out_of_scope=FLAGGED)
    assert await ActionFallback().run(first, t, domain) == []
    assert first.messages[0]["response"] == "utter_out_of_scope"
    second = CollectingDispatcher()
    t = tracker("量子力学是什么", "check_balance", 0.93, sender="oos-2", out_of_scope=FLAGGED,
                history=[user("帮我写一首关于猫的诗", "product_question", 0.96, out_of_scope=FLAGGED)])
    events = await ActionFallback().run(second, t, domain)
    assert events[-1]["event"] == "pause"
    assert (second.messages[0]["custom"]["queue"], second.messages[0]["custom"]["reason"]) == (
        "general", "out_of_scope")
    async with TicketStore(handoff_env) as store:
        (ticket,) = [tk for tk in await store.list_open() if tk.conversation_id == "oos-2"]
    assert ticket.reason == "out_of_scope" and ticket.reason_detail["out_of_scope"] == FLAGGED


async def test_the_policys_second_unclear_turn_hands_over_without_looking_back(handoff_env, domain, dispatcher):
    # RoutingPolicy saw the earlier unclear turn (this tracker shows none): its record decides
    turn = {"message_id": None, "timestamp": USER_TIMESTAMP}
    config = load_routing(Path(os.environ["KEFU_ROUTING_FILE"]))
    record = decide(TurnSignals("unfreeze_card", 0.5, unclear_before=1, turn=turn), config).record
    t = tracker("就是那个", "unfreeze_card", 0.5, slots={"routing": record})
    events = await ActionFallback().run(dispatcher, t, domain)
    assert events[-1]["event"] == "pause" and dispatcher.messages[0]["custom"]["reason"] == "low_confidence"
