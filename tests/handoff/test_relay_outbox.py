"""The relay's outbox against the local Slack and Chatwoot contract servers: while the tool answers
500 the customer's messages wait in PostgreSQL (across a console restart); when it is back every
message arrives once, in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Callable

import pytest
from psycopg_pool import AsyncConnectionPool

from handoff.adapters.base import AdapterLinks
from handoff.adapters.chatwoot import ChatwootAdapter
from handoff.adapters.slack import SlackAdapter
from handoff.relay import Hub, Relay
from handoff.tracker_events import TrackerEvents
from kefu.pgserver import sqlalchemy_url
from tests.handoff.livechat_servers import ChatwootServer, SlackServer
from tests.handoff.test_relay import user

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


@pytest.fixture
async def pool(tickets_url: str) -> AsyncIterator[AsyncConnectionPool]:
    events_pool = AsyncConnectionPool(tickets_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
    await events_pool.open()
    yield events_pool
    await events_pool.close()


async def new_relay(store: Any, pool: AsyncConnectionPool, adapter: Any) -> Relay:
    """A relay as the console builds it (the Rasa client is not used by the customer → agent path)."""
    relay = Relay(store, TrackerEvents(pool), None, adapter, Hub(), backoff_s=0.05, max_backoff_s=0.2)
    await relay.migrate()
    return relay


async def poll_until(relay: Relay, done: Callable[[], Any], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await relay.poll_once()
        if await done() if asyncio.iscoroutinefunction(done) else done():
            return True
        await asyncio.sleep(0.1)
    return False


async def paused_conversation(tickets_url: str, store: Any) -> tuple[Any, Any, Any]:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    conversation = f"outbox-{uuid.uuid4().hex[:8]}"
    tracker_store = SQLTrackerStore(dialect="postgresql", host=sqlalchemy_url(tickets_url))
    tracker = DialogueStateTracker.from_events(conversation, [ActionExecuted("action_listen")])
    await tracker_store.save(tracker)
    ticket = await store.create(conversation_id=conversation, channel="rest", queue="cards", reason="specialist",
                                language="zh")
    return ticket, tracker, tracker_store


async def outage_then_recovery(tickets_url: str, store: Any, pool: AsyncConnectionPool, adapter: Any,
                               server: Any, shown: Callable[[Any], list[str]]) -> None:
    ticket, tracker, tracker_store = await paused_conversation(tickets_url, store)
    relay = await new_relay(store, pool, adapter)
    await relay.poll_once()  # opens the thread/conversation while the tool is up
    texts = [f"第{i}条 message {i}" for i in range(1, 4)]
    server.down = True
    try:
        for text in texts:
            tracker.update(user(text))
        await tracker_store.save(tracker)

        async def stored() -> bool:
            return [m["text"] for m in await store.messages(ticket.id) if m["role"] == "customer"] == texts

        assert await poll_until(relay, stored), "stored in the ticket although the tool is down"
        for _ in range(5):  # a few failing rounds (backoff 0.05 s → 0.2 s)
            await relay.poll_once()
            await asyncio.sleep(0.1)
        assert shown(ticket) == []
        relay = await new_relay(store, pool, adapter)  # a console restart: the queue is in PostgreSQL
    finally:
        server.down = False
    assert await poll_until(relay, lambda: len(shown(ticket)) >= 3)
    for _ in range(5):
        await relay.poll_once()
    assert shown(ticket) == texts, "every message once, in order"


async def test_slack_outage_messages_arrive_once_in_order(store, tickets_url, pool, slack: SlackServer,
                                                          links: AdapterLinks):
    adapter = SlackAdapter(links, bot_token=slack.token, signing_secret="s", channel=slack.channel,
                           api_url=slack.url)
    await adapter.start()
    try:
        threads: dict[str, str] = {}

        def shown(ticket: Any) -> list[str]:
            if ticket.id not in threads:
                threads[ticket.id] = next(p["ts"] for p in slack.posts if ticket.id in p["text"])
            return [t.removeprefix("customer: ") for t in slack.thread(threads[ticket.id])]

        await outage_then_recovery(tickets_url, store, pool, adapter, slack, shown)
    finally:
        await adapter.stop()


async def test_chatwoot_outage_messages_arrive_once_in_order(store, tickets_url, pool, chatwoot: ChatwootServer,
                                                             links: AdapterLinks):
    adapter = ChatwootAdapter(links, url=chatwoot.url, token=chatwoot.token, account_id=str(chatwoot.account_id),
                              inbox_id=str(chatwoot.inbox_id), webhook_token="w")
    await adapter.start()
    try:
        def shown(ticket: Any) -> list[str]:
            conv = next(c for c in chatwoot.conversations.values()
                        if c["custom_attributes"].get("kefu_ticket") == ticket.id)
            return [m["content"] for m in conv["messages"] if m["message_type"] == "incoming"]

        await outage_then_recovery(tickets_url, store, pool, adapter, chatwoot, shown)
    finally:
        await adapter.stop()
