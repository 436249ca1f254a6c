import datetime as dt

import pytest
from rasa_sdk.events import SlotSet

from actions.forms import (
    ActionLookupOrder,
    ActionSubmitLostCard,
    ActionSubmitReturn,
    ValidateLostCardForm,
    ValidateOrderLookupForm,
    ValidateReturnForm,
    mask_phone,
    parse_card_last4,
    parse_phone,
    reference,
)
from tests.actions.conftest import make_tracker


@pytest.mark.parametrize(
    "text, expected",
    [("6217", "6217"), ("尾号是6217的那张", "6217"), ("it ends in 0093.", "0093"), ("62178", None),
     ("12", None), ("", None), ("1234 or 5678", None), ("🙂", None), (None, None)],
)
def test_card_last4_is_read_from_free_text(text, expected):
    assert parse_card_last4(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("13812345678", "13812345678"), ("手机138 1234 5678", "13812345678"), ("+44 7700 900123", "+447700900123"),
     ("415-555-0132", "4155550132"), ("12345", None), ("call me", None), ("", None)],
)
def test_phone_numbers(text, expected):
    assert parse_phone(text) == expected


def test_masks_and_references():
    assert mask_phone("13812345678") == "138****5678"
    ref = reference("LC", dt.date(2026, 11, 25))
    assert ref.startswith("LC20261125-") and len(ref) == len("LC20261125-") + 6
    assert reference("LC") != reference("LC")


async def test_invalid_card_is_refused_with_a_reason(domain, dispatcher):
    form = ValidateLostCardForm()
    result = form.validate_card_last4("不记得了", dispatcher, make_tracker("inform"), domain)
    assert result == {"card_last4": None}
    assert dispatcher.messages[0]["response"] == "utter_invalid_card_last4"
    assert form.validate_phone("13912345678", dispatcher, make_tracker("inform"), domain) == {"phone": "13912345678"}


async def test_order_id_is_normalised_and_must_exist(domain, dispatcher):
    form = ValidateOrderLookupForm()
    assert form.validate_order_id("我的单号 dd2411050123", dispatcher, make_tracker(), domain) == {
        "order_id": "DD2411050123"
    }
    assert form.validate_order_id("AB0000000000", dispatcher, make_tracker(), domain) == {"order_id": None}
    assert dispatcher.messages[-1]["response"] == "utter_order_not_found"
    assert form.validate_order_id("'; DROP TABLE orders;--", dispatcher, make_tracker(), domain) == {"order_id": None}
    assert dispatcher.messages[-1]["response"] == "utter_invalid_order_id"


async def test_return_reason_is_bounded(domain, dispatcher):
    form = ValidateReturnForm()
    assert form.validate_return_reason("x" * 5000, dispatcher, make_tracker(), domain)["return_reason"] == "x" * 300
    assert form.validate_return_reason("   ", dispatcher, make_tracker(), domain) == {"return_reason": None}


async def test_lost_card_submission_blocks_the_card_and_clears_slots(domain, dispatcher):
    tracker = make_tracker("inform", slots={"card_last4": "6217", "phone": "13812345678"})
    events = await ActionSubmitLostCard().run(dispatcher, tracker, domain)
    assert events == [SlotSet("card_last4", None), SlotSet("phone", None)]
    (message,) = dispatcher.messages
    assert message["response"] == "utter_lost_card_done"
    assert message["card_last4"] == "6217" and message["masked_phone"] == "138****5678"
    assert message["reference"].startswith("LC")


async def test_order_lookup_answers_in_the_conversation_language(domain, dispatcher):
    zh = make_tracker("inform", slots={"order_id": "DD2411050123", "language": "zh"})
    en = make_tracker("inform", slots={"order_id": "DD2411050123", "language": "en"})
    await ActionLookupOrder().run(dispatcher, zh, domain)
    await ActionLookupOrder().run(dispatcher, en, domain)
    assert dispatcher.messages[0]["items"] == "空气炸锅 5L" and "顺丰" in dispatcher.messages[0]["status_text"]
    assert dispatcher.messages[1]["items"] == "5L air fryer" and "SF Express" in dispatcher.messages[1]["status_text"]


async def test_return_is_created_inside_the_window_and_refused_outside(domain, dispatcher):
    recent = make_tracker("inform", slots={"order_id": "SO2411150457", "return_reason": "尺码不合适"})
    old = make_tracker("inform", slots={"order_id": "DD2410010456", "return_reason": "坏了", "language": "en"})
    events = await ActionSubmitReturn().run(dispatcher, recent, domain)
    await ActionSubmitReturn().run(dispatcher, old, domain)
    assert events == [SlotSet("order_id", None), SlotSet("return_reason", None)]
    assert dispatcher.messages[0]["response"] == "utter_return_created"
    assert dispatcher.messages[1]["response"] == "utter_return_not_eligible"
    assert "7-day" in dispatcher.messages[1]["why"]
