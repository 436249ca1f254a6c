"""Personal numbers in what the handoff package stores and shows agents: the ticket's transcript and
drafts (real PostgreSQL ticket store), the live-chat briefing, and the Slack thread (local Slack server)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from psycopg_pool import AsyncConnectionPool

from handoff.adapters.base import AdapterLinks, handoff_summary
from handoff.adapters.slack import SlackAdapter
from handoff.opening import HandoffRequest, open_handoff
from handoff.tickets import TicketStore
from kefu.config import PROJECT_ROOT
from kefu.routing.decision import TurnSignals, decide
from kefu.routing.settings import load_routing
from tests.handoff.livechat_servers import SlackServer

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]
RAW = ("13812345678", "4111 1111 1111 1111", "11010519491231002X")
SAID = f"手机{RAW[0]}，卡号{RAW[1]}，身份证{RAW[2]}，订单DD2411050123"
MASKED = "手机138****5678，卡号**** **** **** 1111，身份证1101**********002X，订单DD2411050123"
OPEN = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # every queue open


def leaked(value: object) -> list[str]:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return [raw for raw in RAW if raw in text]


async def test_the_ticket_stores_transcript_and_drafts_masked(store: TicketStore) -> None:
    config = load_routing(PROJECT_ROOT / "data" / "routing.yml")
    parse = {"intent": {"name": "ask_human", "confidence": 0.97}, "intent_ranking": []}
    events = [{"event": "user", "text": SAID, "timestamp": 5.0, "parse_data": parse},
              {"event": "bot", "text": f"已记录 {RAW[0]}", "timestamp": 6.0}]
    request = HandoffRequest("c-pii", "rest", "zh", parse, events,
                             {"kb_source": "faq", "kb_confidence": 0.8, "kb_answer": f"请拨打 {RAW[0]}"}, {})

    async def factory() -> TicketStore:
        return store

    opened = await open_handoff(request, decide(TurnSignals("ask_human", 0.97), config, now=OPEN), config, factory)
    ticket = await store.get(opened.ticket_id)
    assert ticket.transcript[0]["text"] == MASKED and ticket.transcript[1]["text"] == "已记录 138****5678"
    assert ticket.suggestions[-1]["text"] == "请拨打 138****5678"
    assert not leaked(ticket.__dict__)


def test_the_briefing_masks_even_an_unmasked_transcript() -> None:
    ticket = SimpleNamespace(id="t1", queue="general", reason="angry", priority=1, language="zh", channel="rest",
                             transcript=[{"role": "customer", "text": SAID}])
    assert handoff_summary(ticket).endswith("customer: " + MASKED)


async def test_the_slack_thread_gets_masked_text(links: AdapterLinks, slack: SlackServer) -> None:
    adapter = SlackAdapter(links, bot_token=slack.token, signing_secret="s", channel=slack.channel, api_url=slack.url)
    await adapter.start()
    try:
        ticket = SimpleNamespace(id=str(uuid.uuid4()), queue="general", reason="angry", priority=1, language="zh",
                                 channel="rest", transcript=[{"role": "customer", "text": SAID}])
        await adapter.open_handoff(ticket)
        await adapter.relay_customer_message(ticket, SAID)
    finally:
        await adapter.stop()
    posts = [p["text"] for p in slack.posts]
    assert not leaked(posts) and MASKED in posts[0] and posts[1] == "customer: " + MASKED


async def test_the_ticket_pages_history_from_rasas_tracker_is_masked(tickets_url: str) -> None:
    """Rasa's tracker keeps the raw text; the history agents see next to the ticket is masked."""
    from rasa.core.tracker_store import SQLTrackerStore  # lazy: Rasa only for writing real tracker rows
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from handoff.tracker_events import TrackerEvents
    from kefu.pgserver import sqlalchemy_url

    tracker = DialogueStateTracker.from_events(
        "c-pii-history", [ActionExecuted("action_listen"), UserUttered(SAID), BotUttered(f"已记录 {RAW[0]}")])
    await SQLTrackerStore(dialect="postgresql", host=sqlalchemy_url(tickets_url)).save(tracker)
    async with AsyncConnectionPool(tickets_url, min_size=1, max_size=1, open=False) as pool:
        history = await TrackerEvents(pool).history("c-pii-history")
    assert [turn["text"] for turn in history] == [MASKED, "已记录 138****5678"]
    assert not leaked(history)
