from actions.faq import ActionAnswerFaq, response_for
from tests.actions.conftest import make_tracker

FAQ_INTENTS = [
    "freeze_card", "unfreeze_card", "check_balance", "transfer_limit", "ask_fees", "loan_info",
    "apply_credit_card", "open_account", "reset_password", "shipping_time", "refund_status",
    "request_invoice", "change_address", "cancel_order", "product_question", "ask_coupon",
]


def test_every_faq_intent_has_a_bilingual_answer(domain):
    for intent in FAQ_INTENTS:
        name = response_for(intent, domain["responses"])
        assert name == f"utter_faq_{intent}"
        variants = domain["responses"][name]
        assert [v.get("condition", [{}])[0].get("value") for v in variants] == ["zh", None]
        assert all(v["text"].strip() for v in variants)


async def test_answers_the_intent_of_the_latest_message(domain, dispatcher):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("ask_fees"), domain)
    assert events == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_faq_ask_fees"]


async def test_small_talk_inside_a_form_gets_its_own_response(domain, dispatcher):
    await ActionAnswerFaq().run(dispatcher, make_tracker("bot_challenge"), domain)
    assert dispatcher.messages[0]["response"] == "utter_iamabot"


async def test_unknown_intent_asks_to_rephrase(domain, dispatcher):
    await ActionAnswerFaq().run(dispatcher, make_tracker("no_such_intent"), domain)
    assert dispatcher.messages[0]["response"] == "utter_ask_rephrase"
