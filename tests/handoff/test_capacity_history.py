"""Queue capacity counts only conversations with history (handoff.opening.has_history), against a real
PostgreSQL ticket store: before, 30 brand-new senders saying "转人工" filled the general queue
(max_waiting 30) and every real customer after them got a callback ticket."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import yaml

from handoff.opening import HandoffRequest, has_history, open_handoff
from handoff.tickets import TicketStore
from kefu.config import PROJECT_ROOT
from kefu.routing.decision import TurnSignals, decide
from kefu.routing.settings import parse_routing

OPEN = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
INTENT = {"name": "ask_human", "confidence": 0.97}
PARSE = {"intent": INTENT, "intent_ranking": [INTENT]}


def user(text: str, at: float) -> dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": at, "parse_data": PARSE}


def request(conversation: str, events: list[dict[str, Any]]) -> HandoffRequest:
    return HandoffRequest(conversation, "rest", "zh", PARSE, events, {}, {})


def factory(store: TicketStore):
    async def get() -> TicketStore:
        return store

    return get


def test_history_means_three_messages_or_an_older_conversation():
    now = time.time()
    assert not has_history([user("转人工", now)], now)
    assert has_history([user("你好", now - 5), user("卡丢了", now - 3), user("转人工", now)], now)
    assert has_history([{"event": "session_started", "timestamp": now - 600}, user("转人工", now)], now)


async def test_fresh_senders_do_not_push_a_real_customer_into_a_callback(store):
    raw = yaml.safe_load((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"))
    raw["defaults"]["hours"] = {"always": True}
    raw["queues"]["general"] = {"max_waiting": 30}
    config = parse_routing(raw)
    decision = decide(TurnSignals("ask_human", 0.97), config, now=OPEN)
    for n in range(30):
        flood = await open_handoff(request(f"flood-{n}", [user("转人工", time.time())]), decision, config,
                                   factory(store))
        assert flood.outcome == "queued", "a brand-new sender's ticket is still written and served"
    assert len(await store.list_open()) == 30 and await store.waiting_count("general") == 0
    now = time.time()
    customer = [user("我的卡丢了", now - 40), user("怎么挂失", now - 20), user("转人工", now)]
    opened = await open_handoff(request("real", customer), decision, config, factory(store))
    assert opened.outcome == "queued" and opened.decision.route != "callback"
    assert opened.decision.record["capacity"] == {"waiting": 0, "max_waiting": 30}
    assert await store.waiting_count("general") == 1
