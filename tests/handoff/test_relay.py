"""customer → agent relay: user events that Rasa's own SQL tracker store writes while a conversation
is paused reach the ticket and the agent's view once (cursor per ticket), across a console restart."""

from __future__ import annotations

import time

import pytest
import requests

from kefu.pgserver import sqlalchemy_url
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import Client, kefu_env, start_console

rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]


def user(text: str, sentiment: dict | None = None):
    from rasa.shared.core.events import UserUttered

    parse = {"intent": {"name": "complain", "confidence": 0.9}, "entities": [], "text": text}
    if sentiment:
        parse["sentiment"] = sentiment
    return UserUttered(text, intent=parse["intent"], parse_data=parse, input_channel="rest")


async def wait_for_customer_texts(store, ticket_id: str, count: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = [m["text"] for m in await store.messages(ticket_id) if m["role"] == "customer"]
        if len(texts) >= count:
            return texts
        time.sleep(0.2)
    return texts


async def test_paused_conversation_messages_reach_the_agent_once_across_restarts(
    store, tickets_url, rasa_api, tmp_path
):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted, ConversationPaused
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker_store = SQLTrackerStore(dialect="postgresql", host=sqlalchemy_url(tickets_url))
    env = kefu_env(tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token)
    console_fixtures.add_agent(env, "sara", "senior")
    first = start_console(env, tmp_path / "first.log")
    try:
        tracker = DialogueStateTracker.from_events(
            "conv-relay",
            [ActionExecuted("action_listen"), user("你们太差劲了！", {"label": "negative", "score": -0.9})],
        )
        await tracker_store.save(tracker)
        time.sleep(0.05)
        ticket = await store.create(conversation_id="conv-relay", channel="rest", queue="senior", reason="angry",
                                    priority=100, language="zh")
        tracker.update(ConversationPaused())
        tracker.update(user("人呢？快点", {"label": "negative", "score": -0.6}))
        await tracker_store.save(tracker)
        texts = await wait_for_customer_texts(store, ticket.id, 1)
        assert texts == ["人呢？快点"], "only messages after the handoff are relayed"

        sara = Client(first.url)
        assert sara.login("sara").status_code == 303
        detail = sara.get(f"/api/tickets/{ticket.id}").json()
        history = [(h["role"], h["text"]) for h in detail["history"]]
        assert ("customer", "你们太差劲了！") in history and ("customer", "人呢？快点") in history
        assert detail["history"][0]["sentiment"]["label"] == "negative"
    finally:
        first.stop()

    tracker.update(user("还在吗？"))  # arrives while the console is down
    await tracker_store.save(tracker)
    second = start_console(env, tmp_path / "second.log")
    try:
        texts = await wait_for_customer_texts(store, ticket.id, 2)
        time.sleep(1.0)  # a few more relay rounds: nothing may be repeated
        texts = [m["text"] for m in await store.messages(ticket.id) if m["role"] == "customer"]
        assert texts == ["人呢？快点", "还在吗？"]
        assert requests.get(second.url + "/healthz").status_code == 200
    finally:
        second.stop()


async def test_a_dead_live_chat_tool_does_not_stop_the_relay(store, tickets_url, rasa_api, tmp_path):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    from tests.servers import free_port

    env = kefu_env(tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
                   KEFU_HANDOFF_ADAPTER="slack", KEFU_SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api",
                   KEFU_SLACK_BOT_TOKEN="xoxb-test", KEFU_SLACK_SIGNING_SECRET="s", KEFU_SLACK_CHANNEL="C1")
    console = start_console(env, tmp_path / "console.log")
    try:
        ticket = await store.create(conversation_id="conv-dead-tool", channel="rest", queue="cards",
                                    reason="specialist", language="zh")
        tracker_store = SQLTrackerStore(dialect="postgresql", host=sqlalchemy_url(tickets_url))
        tracker = DialogueStateTracker.from_events("conv-dead-tool", [ActionExecuted("action_listen")])
        tracker.update(user("有人吗"))
        await tracker_store.save(tracker)
        assert await wait_for_customer_texts(store, ticket.id, 1) == ["有人吗"], "stored although Slack is down"
        assert "could not" in (tmp_path / "console.log").read_text(), "the failure is logged"
    finally:
        console.stop()
