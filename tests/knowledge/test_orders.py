import datetime as dt

import pytest

from kefu.config import PROJECT_ROOT
from kefu.errors import BadInput
from knowledge.orders import Order, OrderBook, find_order_id
from knowledge.rules import Decision, RuleBook


def test_find_order_id_in_free_text():
    assert find_order_id("订单DD2411050123到哪了") == "DD2411050123"
    assert find_order_id("order so2411150457 please") == "SO2411150457"
    assert find_order_id("DD24110501234") is None  # 11 digits: not an order number
    assert find_order_id("") is None


def _decide(order: Order, today: dt.date, language: str) -> Decision:
    """The project's return rules (data/knowledge/rules) for a seed order, as the return form asks them."""
    facts = {"status": order.status}
    if order.delivered is not None:
        facts["days_since_delivery"] = (today - order.delivered).days
    return RuleBook(PROJECT_ROOT / "data" / "knowledge" / "rules").evaluate("return_eligibility", facts, language)


def test_relative_dates_and_return_window():
    book = OrderBook()
    order = book.get("so2411150457")
    assert order is not None and order.delivered == dt.date.today() - dt.timedelta(days=4)
    assert _decide(order, dt.date.today(), "en").outcome == "eligible_if_unused"
    late = _decide(order, order.delivered + dt.timedelta(days=8), "zh")
    assert late.outcome == "not_eligible" and "7" in late.text
    pending = _decide(book.get("DD2411050123"), dt.date.today(), "en")
    assert pending.outcome == "cancel_instead" and pending.text.startswith("The order hasn't been delivered")
    assert book.get("ZZ0000000000") is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("orders:\n  - id: nope\n", "order #1 has no valid id"),
        ("orders:\n  - id: DD2411050123\n    placed: yesterday\n", "placed must be an ISO date"),
        ("orders: [\n", "cannot read orders"),
    ],
)
def test_bad_order_files_are_rejected_with_the_row(tmp_path, content, message):
    path = tmp_path / "orders.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        OrderBook(path).get("DD2411050123")


def test_empty_order_file_has_no_orders(tmp_path):
    path = tmp_path / "orders.yml"
    path.write_text("", encoding="utf-8")
    assert OrderBook(path).get("DD2411050123") is None
