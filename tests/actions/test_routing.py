from actions.handoff import ActionHandoff
from actions.routing import ActionFallback, consecutive_fallbacks
from tests.actions.conftest import make_tracker, user_event


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


async def test_second_fallback_in_a_row_hands_over(domain, dispatcher):
    tracker = make_tracker("out_of_scope", history=[user_event("asdf", "nlu_fallback")])
    await ActionFallback().run(dispatcher, tracker, domain)
    (message,) = dispatcher.messages
    assert message["response"] == "utter_handoff_fallback"
    assert message["custom"]["handoff"] == {"queue": "general", "reason": "repeated_fallback"}


async def test_anger_goes_to_the_senior_queue(domain, dispatcher):
    await ActionHandoff().run(dispatcher, make_tracker("insult"), domain)
    assert dispatcher.messages[0]["response"] == "utter_handoff_senior"
    assert dispatcher.messages[0]["custom"]["handoff"]["queue"] == "senior"


async def test_explicit_request_and_complaint(domain, dispatcher):
    await ActionHandoff().run(dispatcher, make_tracker("ask_human"), domain)
    await ActionHandoff().run(dispatcher, make_tracker("complain"), domain)
    assert [m["custom"]["handoff"]["reason"] for m in dispatcher.messages] == ["explicit_request", "complaint"]
    for message in dispatcher.messages:
        assert message["response"] in domain["responses"]
