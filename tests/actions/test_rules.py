"""action_check_return_eligibility: order book + graph category + rule book, real trackers and servers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rasa_sdk.events import SlotSet

from actions.rules import ActionCheckReturnEligibility, message_facts, return_facts
from knowledge.graph import open_graph
from knowledge.graph.qa import GraphQA
from knowledge.orders import OrderBook
from knowledge.rules import RuleBook
from tests.actions.conftest import make_tracker
from tests.actions.return_fixtures import orders, wired  # noqa: F401 (fixtures)
from tests.knowledge.conftest_graph import RULES_DIR, falkordb_server, seeded_graph_url  # noqa: F401


def slots(events: list) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def run(dispatcher, domain, text: str, language: str = "zh", order_id: str | None = None) -> list:
    tracker = make_tracker("return_item", text, slots={"language": language, "order_id": order_id,
                                                       "phone": "13800000000"})
    return await ActionCheckReturnEligibility().run(dispatcher, tracker, domain)


async def test_within_window_with_category_from_the_graph(wired, dispatcher, domain) -> None:  # noqa: F811
    events = await run(dispatcher, domain, "SO0000000001 这单还能退吗")
    text = dispatcher.messages[0]["text"]
    assert "签收4天" in text and "判定依据：签收天数（4） ≤ 7 且 已拆封未知" in text
    assert slots(events) == {"kb_source": "rule", "kb_confidence": 0.95}


async def test_window_passed_from_the_order_slot_in_english(wired, dispatcher, domain) -> None:  # noqa: F811
    await run(dispatcher, domain, "can I still return it?", "en", order_id="SO0000000002")
    text = dispatcher.messages[0]["text"]
    assert "delivered 12 days ago" in text and "Decided by: days since delivery (12) > 7" in text


async def test_opened_cosmetics_are_refused_and_quality_problems_accepted(wired, dispatcher, domain) -> None:  # noqa: F811
    await run(dispatcher, domain, "SO0000000003 口红拆封了，能退吗")
    assert "拆封后" in dispatcher.messages[-1]["text"]
    await run(dispatcher, domain, "SO0000000003 口红断了是质量问题")
    assert "质量问题" in dispatcher.messages[-1]["text"] and "运费由商城承担" in dispatcher.messages[-1]["text"]


async def test_not_delivered_and_custom_items(wired, dispatcher, domain) -> None:  # noqa: F811
    await run(dispatcher, domain, "SO0000000004还能退吗")
    assert "取消订单" in dispatcher.messages[-1]["text"]
    await run(dispatcher, domain, "SO0000000005 能退吗")
    assert "定制" in dispatcher.messages[-1]["text"]


async def test_missing_or_unknown_order(wired, dispatcher, domain) -> None:  # noqa: F811
    events = await run(dispatcher, domain, "还能退货吗")
    assert dispatcher.messages[-1]["response"] == "utter_ask_order_id"
    assert SlotSet("kb_confidence", 0.0) in events
    await run(dispatcher, domain, "ZZ9999999999 能退吗")
    assert dispatcher.messages[-1]["response"] == "utter_kb_rule_unknown_order"
    assert dispatcher.messages[-1]["order_id"] == "ZZ9999999999"


async def test_someone_elses_order_is_answered_as_unknown(wired, dispatcher, domain) -> None:  # noqa: F811
    for phone in ("13912345678", None):
        tracker = make_tracker("return_item", "SO0000000001 能退吗", slots={"order_id": "SO0000000001", "phone": phone})
        await ActionCheckReturnEligibility().run(dispatcher, tracker, domain)
        assert dispatcher.messages[-1]["response"] == "utter_kb_rule_unknown_order", dispatcher.messages[-1]


async def test_graph_down_still_decides_without_the_category(orders, services, dispatcher, domain) -> None:  # noqa: F811
    services.graph = GraphQA(open_graph("falkordb://127.0.0.1:1/kefu"))  # nothing listens on port 1
    services.rules = RuleBook.from_dir(RULES_DIR)
    await run(dispatcher, domain, "SO0000000005 能退吗")  # custom item, but the category is unknown now
    assert "签收1天" in dispatcher.messages[-1]["text"]


async def test_broken_rules_give_a_polite_answer(orders, tmp_path: Path, services, dispatcher, domain) -> None:  # noqa: F811
    services.graph = GraphQA(open_graph("falkordb://127.0.0.1:1/kefu"))
    services.rules_dir = tmp_path / "no-rules"  # the process's rules directory is missing
    events = await run(dispatcher, domain, "SO0000000001 能退吗")
    assert dispatcher.messages[-1]["response"] == "utter_kb_rule_unavailable"
    assert slots(events)["kb_confidence"] == 0.0


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("没拆封", {"opened": False}),
        ("box is still sealed", {"opened": False}),
        ("I opened it and it's broken", {"opened": True, "quality_issue": True}),
        ("耳机一边没声音", {"quality_issue": True}),
        ("just changed my mind", {}),
    ],
)
def test_message_facts(text: str, facts: dict) -> None:
    assert message_facts(text) == facts


def test_return_facts_from_an_order(orders: OrderBook) -> None:  # noqa: F811
    order = orders.get("SO0000000002")
    facts = return_facts(order, dt.date.today(), "", "appliances")
    assert facts == {"status": "delivered", "days_since_delivery": 12, "category": "appliances"}
