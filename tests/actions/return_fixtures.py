"""Return fixtures shared by the return form and the eligibility action: a private order book,
the seeded FalkorDB graph (item → shop category) and the project's rule book."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from actions.services import Services
from knowledge.graph import open_graph
from knowledge.graph.qa import GraphQA
from knowledge.orders import OrderBook
from knowledge.rules import RuleBook
from tests.knowledge.conftest_graph import RULES_DIR

ORDERS = {
    "orders": [
        {"id": "SO0000000001", "items": {"zh": "跑步鞋 42码", "en": "running shoes"}, "status": "delivered",
         "placed": "today-10", "delivered": "today-4", "phone": "13800000000"},
        {"id": "SO0000000002", "items": {"zh": "咖啡机", "en": "coffee machine"}, "status": "delivered",
         "placed": "today-20", "delivered": "today-12", "phone": "13800000000"},
        {"id": "SO0000000003", "items": {"zh": "口红", "en": "lipstick"}, "status": "delivered",
         "placed": "today-5", "delivered": "today-2", "phone": "13800000000"},
        {"id": "SO0000000004", "items": {"zh": "蓝牙耳机", "en": "earbuds"}, "status": "shipped",
         "placed": "today-1", "delivered": None, "phone": "13800000000"},
        {"id": "SO0000000005", "items": {"zh": "刻字钢笔", "en": "engraved pen"}, "status": "delivered",
         "placed": "today-3", "delivered": "today-1", "phone": "13800000000"},
        {"id": "SO0000000006", "items": {"zh": "水果礼盒", "en": "fruit box"}, "status": "delivered",
         "placed": "today-2", "delivered": "today-1", "phone": "13800000000"},
    ]
}  # fmt: skip


@pytest.fixture
def orders(tmp_path: Path, services: Services) -> OrderBook:
    path = tmp_path / "orders.yml"
    path.write_text(yaml.safe_dump(ORDERS, allow_unicode=True), encoding="utf-8")
    services.orders = OrderBook(path)  # the test's order book behind the actions
    return services.orders


@pytest.fixture
def wired(seeded_graph_url: str, orders: OrderBook, services: Services) -> Iterator[None]:
    """The real seed graph and rule book behind the actions."""
    services.graph = GraphQA(open_graph(seeded_graph_url))
    services.rules = RuleBook.from_dir(RULES_DIR)
    yield
