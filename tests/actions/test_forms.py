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
from knowledge.graph import open_graph
from knowledge.graph.qa import GraphQA
from knowledge.orders import OrderBook
from knowledge.rules import RuleBook
from tests.actions.conftest import make_tracker
from tests.actions.return_fixtures import orders, wired  # noqa: F401 (fixtures)
from tests.knowledge.conftest_graph import falkordb_server, rules_dir, seeded_graph_url  # noqa: F401


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


async def test_order_id_is_normalised_and_must_be_well_formed(domain, dispatcher):
    form = ValidateOrderLookupForm()
    assert form.validate_order_id("我的单号 dd2411050123", dispatcher, make_tracker(), domain) == {
        "order_id": "DD2411050123"
    }
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
    zh = make_tracker("inform", slots={"order_id": "DD2411050123", "phone": "13812345678", "language": "zh"})
    en = make_tracker("inform", slots={"order_id": "DD2411050123", "phone": "+86 138-1234-5678", "language": "en"})
    await ActionLookupOrder().run(dispatcher, zh, domain)
    await ActionLookupOrder().run(dispatcher, en, domain)
    assert dispatcher.messages[0]["items"] == "空气炸锅 5L" and "顺丰" in dispatcher.messages[0]["status_text"]
    assert dispatcher.messages[1]["items"] == "5L air fryer" and "SF Express" in dispatcher.messages[1]["status_text"]


async def lookup(dispatcher, domain, order_id: str, phone) -> list:
    tracker = make_tracker("inform", slots={"order_id": order_id, "phone": phone, "language": "en"})
    return await ActionLookupOrder().run(dispatcher, tracker, domain)


async def test_order_lookup_shows_an_order_only_to_the_phone_it_was_placed_with(domain, dispatcher, caplog):
    """Order ids are guessable (DD + date + sequence): the order's own phone, in full, is the key."""
    events = await lookup(dispatcher, domain, "DD2411050123", "138 1234 5678")
    [shown] = dispatcher.messages
    assert shown["response"] == "utter_order_status" and "SF Express" in shown["status_text"]
    answers = []
    for order_id, phone in (("DD2411050123", "13912345678"), ("DD2411050123", "5678"), ("DD2411050123", None),
                            ("DD2411059999", "13812345678")):
        dispatcher.messages.clear()
        with caplog.at_level("WARNING", logger="knowledge.orders"):
            await lookup(dispatcher, domain, order_id, phone)
        [message] = dispatcher.messages
        answers.append({k: v for k, v in message.items() if k != "order_id"})
        assert message["order_id"] == order_id and "status_text" not in message and "items" not in message
    assert all(a == answers[-1] for a in answers) and answers[-1]["response"] == "utter_order_not_found"
    assert "phone does not match" in caplog.text and "5678" not in caplog.text  # logged, without the number
    assert events == [SlotSet("order_id", None), SlotSet("phone", None)]


async def test_order_id_validation_is_no_oracle_for_which_orders_exist(domain, dispatcher):
    form = ValidateOrderLookupForm()
    assert form.validate_order_id("AB0000000000", dispatcher, make_tracker(), domain) == {"order_id": "AB0000000000"}
    assert form.validate_order_id("DD2411050123", dispatcher, make_tracker(), domain) == {"order_id": "DD2411050123"}
    assert dispatcher.messages == []  # unknown and known ids are asked for the phone alike
    assert form.validate_phone("138-1234-5678", dispatcher, make_tracker(), domain) == {"phone": "13812345678"}
    assert ValidateReturnForm().validate_phone("hm", dispatcher, make_tracker(), domain) == {"phone": None}
    assert dispatcher.messages[-1]["response"] == "utter_invalid_phone"


def messages_of(dispatcher) -> list[str]:
    return [m.get("response") or m["text"] for m in dispatcher.messages]


async def submit_return(dispatcher, domain, order_id: str, reason: str, language: str = "zh",
                        phone: str = "13800000000") -> list:
    tracker = make_tracker("inform", text=reason, slots={"order_id": order_id, "return_reason": reason,
                                                         "phone": phone, "language": language})
    return await ActionSubmitReturn().run(dispatcher, tracker, domain)


RETURN_DONE = [SlotSet("order_id", None), SlotSet("phone", None), SlotSet("return_reason", None),
               SlotSet("return_reason_step", None)]


async def test_eligible_return_is_created_and_says_which_rule_decided(wired, dispatcher, domain):  # noqa: F811
    events = await submit_return(dispatcher, domain, "SO0000000001", "尺码不合适")
    assert events == RETURN_DONE
    why, created = dispatcher.messages
    assert "签收4天" in why["text"] and "判定依据：签收天数（4） ≤ 7 且 已拆封未知" in why["text"]
    assert created["response"] == "utter_return_created" and created["order_id"] == "SO0000000001"
    assert created["reference"].startswith("RT")


async def test_refused_by_days_since_delivery(wired, dispatcher, domain):  # noqa: F811
    await submit_return(dispatcher, domain, "SO0000000002", "changed my mind", "en")
    [message] = dispatcher.messages
    assert message["response"] == "utter_return_not_eligible" and message["order_id"] == "SO0000000002"
    assert message["why"].startswith("it was delivered 12 days ago")
    assert "(Decided by: days since delivery (12) > 7)" in message["why"]


async def test_refused_by_a_category_exception_from_the_graph(wired, dispatcher, domain):  # noqa: F811
    await submit_return(dispatcher, domain, "SO0000000005", "不想要了")  # an engraved pen, delivered yesterday
    [message] = dispatcher.messages
    assert message["response"] == "utter_return_not_eligible"
    assert "定制" in message["why"] and "判定依据：商品类目（定制商品） = 定制商品" in message["why"]


async def test_opened_and_unopened_cosmetics(wired, dispatcher, domain):  # noqa: F811
    await submit_return(dispatcher, domain, "SO0000000003", "口红拆封了，颜色不喜欢")
    assert messages_of(dispatcher) == ["utter_return_not_eligible"]
    assert "拆封后" in dispatcher.messages[0]["why"] and "已拆封：是" in dispatcher.messages[0]["why"]
    dispatcher.messages.clear()
    await submit_return(dispatcher, domain, "SO0000000003", "还没拆封，颜色不喜欢")
    why, created = dispatcher.messages
    assert "（判定依据：签收天数（2） ≤ 7）" in why["text"] and "已拆封未知" not in why["text"]
    assert created["response"] == "utter_return_created"


async def test_quality_problem_on_fresh_food_gets_the_refund_steps(wired, dispatcher, domain):  # noqa: F811
    await submit_return(dispatcher, domain, "SO0000000006", "水果坏了好几个")
    [message] = dispatcher.messages
    assert "无需退回商品" in message["text"] and "1. " in message["text"] and "判定依据" in message["text"]


@pytest.mark.parametrize("reason", ["", "\x00\x01" * 50, "'; DROP TABLE orders; --", "拆封了" * 5000, "🙂" * 300])
async def test_hostile_or_empty_reasons_still_get_a_decision(wired, dispatcher, domain, reason):  # noqa: F811
    events = await submit_return(dispatcher, domain, "SO0000000002", reason)
    assert messages_of(dispatcher) == ["utter_return_not_eligible"]  # delivered 12 days ago, whatever was said
    assert events == RETURN_DONE


async def test_unknown_order(wired, dispatcher, domain):  # noqa: F811
    events = await submit_return(dispatcher, domain, "ZZ9999999999", "不想要了")
    assert messages_of(dispatcher) == ["utter_order_not_found"]
    assert dispatcher.messages[0]["order_id"] == "ZZ9999999999"
    assert events == RETURN_DONE


async def test_a_return_on_someone_elses_order_is_answered_as_not_found(wired, dispatcher, domain):  # noqa: F811
    await submit_return(dispatcher, domain, "SO0000000001", "尺码不合适", phone="13912345678")
    assert dispatcher.messages == [{**dispatcher.messages[0], "response": "utter_order_not_found"}]
    assert dispatcher.messages[0]["order_id"] == "SO0000000001" and "reference" not in dispatcher.messages[0]


async def test_broken_rules_file_gives_a_polite_answer_and_no_return(orders, tmp_path, services, dispatcher,  # noqa: F811
                                                                      domain):
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "return_eligibility.yml").write_text("process: return_eligibility\nrules: [unclosed\n", "utf-8")
    services.rules_dir = broken  # the action server loads the (broken) rules directory on first use
    services.graph = GraphQA(open_graph("falkordb://127.0.0.1:1/kefu"))  # nothing listens on port 1
    events = await submit_return(dispatcher, domain, "SO0000000001", "尺码不合适")
    assert messages_of(dispatcher) == ["utter_kb_rule_unavailable"]
    assert events == RETURN_DONE


async def test_a_broken_edit_keeps_the_rules_in_force(orders, rules_dir, services, dispatcher, domain):  # noqa: F811
    services.rules = RuleBook.from_dir(rules_dir, check_interval=0.0)
    services.graph = GraphQA(open_graph("falkordb://127.0.0.1:1/kefu"))
    (rules_dir / "return_eligibility.yml").write_text("process: [", encoding="utf-8")
    await submit_return(dispatcher, domain, "SO0000000002", "不想要了")
    assert messages_of(dispatcher) == ["utter_return_not_eligible"]
    assert "签收天数（12） > 7" in dispatcher.messages[0]["why"]


async def test_unreadable_order_book_is_polite(tmp_path, services, dispatcher, domain):
    path = tmp_path / "orders.yml"
    path.write_text("orders: [{id: 12}]", encoding="utf-8")
    services.orders = OrderBook(path)
    await submit_return(dispatcher, domain, "SO0000000001", "尺码不合适")
    assert messages_of(dispatcher) == ["utter_kb_rule_unavailable"]


def test_the_answers_use_existing_responses_only(domain):
    """No new responses (the model is not retrained): the templates the action fills must exist."""
    for name, slot in (("utter_return_created", "{reference}"), ("utter_return_not_eligible", "{why}")):
        assert all(slot in variant["text"] for variant in domain["responses"][name])
    assert "utter_kb_rule_unavailable" in domain["responses"] and "utter_order_not_found" in domain["responses"]


@pytest.mark.parametrize(
    "text, cancels",
    [("不想要了", False), ("不想要了，颜色不喜欢", False), ("I don't want it anymore", False),
     ("it stopped working after a day", False), ("算了不退了", True), ("取消退货", True), ("算了", True),
     ("cancel", True), ("stop", True), ("never mind", True), ("I don't want to return it", True), ("", False),
     ("🙂", False)],
)
def test_only_an_explicit_cancel_ends_the_return_at_the_reason_step(text, cancels):
    from actions.forms import cancels_return

    assert cancels_return(text) is cancels


async def test_a_cancel_at_the_reason_step_ends_the_form_without_a_reason(domain, dispatcher):
    """Pilot: "不想要了" as the reason cancelled the return; now only "不退了" ends it, with no slot kept."""
    slots = {"requested_slot": "return_reason", "order_id": "DD2410010456"}
    tracker = make_tracker("stop", text="算了不退了", slots=slots, active_loop="return_form")
    events = await ValidateReturnForm().run(dispatcher, tracker, domain)
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")} for e in events]
    assert SlotSet("return_reason", None) in events and SlotSet("return_cancelled", True) in events
    assert dispatcher.messages[-1]["response"] == "utter_form_stopped"
    dispatcher.messages.clear()
    cancelled = make_tracker("stop", slots={"return_cancelled": True, "order_id": "DD2410010456"})
    events = await ActionSubmitReturn().run(dispatcher, cancelled, domain)
    assert events == [*RETURN_DONE, SlotSet("return_cancelled", None)]
    assert dispatcher.messages == []


async def test_the_rules_are_told_when_the_form_waits_for_the_reason(domain, dispatcher):
    """return_reason_step (a featurized slot) is what lets "不想要了" fill the reason instead of stopping."""
    form = ValidateReturnForm()
    asked_phone = make_tracker("inform", text="DD2410010456", slots={"requested_slot": "order_id",
                                                                      "order_id": "DD2410010456"},
                               active_loop="return_form")
    assert (await form.run(dispatcher, asked_phone, domain))[-1] == SlotSet("return_reason_step", False)
    slots = {"requested_slot": "phone", "order_id": "DD2410010456", "phone": "13812345678"}
    asked_reason = make_tracker("inform", text="13812345678", slots=slots, active_loop="return_form")
    assert (await form.run(dispatcher, asked_reason, domain))[-1] == SlotSet("return_reason_step", True)
