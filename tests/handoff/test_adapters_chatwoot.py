"""Contract tests: the Chatwoot adapter against a local server implementing the documented subset
of Chatwoot's Application API (tests/handoff/livechat_servers.py), and its webhook through the console."""

from __future__ import annotations

import json
import time
import uuid
from typing import AsyncIterator

import pytest
import requests

from handoff.adapters.base import AdapterLinks, WebhookRequest
from handoff.adapters.chatwoot import ChatwootAdapter, parse_teams
from handoff.adapters.http import AdapterUnavailable
from kefu.errors import BadInput, ConfigError
from tests.handoff import console_fixtures
from tests.handoff.livechat_servers import ChatwootServer

rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]
WEBHOOK_TOKEN = "hook-" + uuid.uuid4().hex


@pytest.fixture
async def adapter(chatwoot: ChatwootServer, links: AdapterLinks) -> AsyncIterator[ChatwootAdapter]:
    cw = ChatwootAdapter(links, url=chatwoot.url, token=chatwoot.token, account_id=str(chatwoot.account_id),
                         inbox_id=str(chatwoot.inbox_id), webhook_token=WEBHOOK_TOKEN, teams="senior=9,cards=4")
    await cw.start()
    yield cw
    await cw.stop()


def hook(body: object, token: str = WEBHOOK_TOKEN) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(raw, {"Content-Type": "application/json"}, {"token": token})


async def angry_ticket(store):
    return await store.create(conversation_id=f"cw-{uuid.uuid4().hex[:6]}", channel="socketio", queue="senior",
                              reason="angry", priority=100, language="zh",
                              transcript=[{"role": "customer", "text": "太慢了！", "ts": time.time()}])


async def test_contract_open_handoff_pending_then_open_with_the_team(store, adapter, chatwoot, links):
    ticket = await angry_ticket(store)
    await adapter.open_handoff(ticket)
    conv_id = int(await links.external_id("chatwoot", ticket.id))
    conv = chatwoot.conversations[conv_id]
    created = [b for p, b in chatwoot.requests if p.endswith("/conversations")][-1]
    assert created["status"] == "pending" and created["custom_attributes"]["kefu_ticket"] == ticket.id
    assert conv["status"] == "open" and conv["team_id"] == 9
    note = conv["messages"][0]
    assert note["private"] is True and "太慢了！" in note["content"] and "senior" in note["content"]
    before = (len(chatwoot.conversations), len(chatwoot.requests))
    await adapter.open_handoff(ticket)
    assert (len(chatwoot.conversations), len(chatwoot.requests)) == before, "idempotent: no second conversation"


async def test_contract_messages_both_ways_and_close(store, adapter, chatwoot, links):
    ticket = await angry_ticket(store)
    await adapter.open_handoff(ticket)
    conv_id = int(await links.external_id("chatwoot", ticket.id))
    await adapter.relay_customer_message(ticket, "<b>还要等多久</b>")
    assert chatwoot.conversations[conv_id]["messages"][-1] == {
        "content": "<b>还要等多久</b>", "message_type": "incoming", "private": False}

    reply = {"event": "message_created", "message_type": "outgoing", "private": False, "content": "马上为您处理",
             "conversation": {"id": conv_id}, "sender": {"id": 5, "name": "Lin", "type": "user"}}
    [message] = await adapter.receive_agent_message(hook(reply))
    assert (message.ticket_id, message.agent, message.text) == (ticket.id, "chatwoot:Lin", "马上为您处理")
    ignored = [
        {**reply, "private": True},  # private note
        {**reply, "message_type": "incoming"},  # the customer's own message echoed
        {**reply, "sender": {"type": "agent_bot"}},  # our bot
        {**reply, "conversation": {"id": 999999}},  # not a handoff
        {**reply, "content": ""},
        {"event": "conversation_status_changed", "id": conv_id, "status": "open"},
        {"event": "webwidget_triggered"},
    ]
    for body in ignored:
        assert await adapter.receive_agent_message(hook(body)) == [], body
    [closing] = await adapter.receive_agent_message(
        hook({"event": "conversation_status_changed", "id": conv_id, "status": "resolved"}))
    assert closing.close_disposition == "resolved"
    await adapter.close(ticket, "resolved")
    assert chatwoot.conversations[conv_id]["status"] == "resolved"


@pytest.mark.parametrize("body,token,status", [
    ({"event": "message_created"}, "wrong", 401),
    ({"event": "message_created"}, "", 401),
    (b"{not json", WEBHOOK_TOKEN, 400),
    (b"[1, 2]", WEBHOOK_TOKEN, 400),
    (b"\xff\xfe", WEBHOOK_TOKEN, 400),
])
async def test_contract_webhook_rejects_bad_requests(adapter, body, token, status):
    with pytest.raises(BadInput) as exc:
        await adapter.receive_agent_message(hook(body, token))
    assert exc.value.status == status


async def test_contract_wrong_api_token_is_a_clear_error(store, chatwoot, links):
    cw = ChatwootAdapter(links, url=chatwoot.url, token="wrong", account_id=str(chatwoot.account_id),
                         inbox_id=str(chatwoot.inbox_id), webhook_token=WEBHOOK_TOKEN)
    await cw.start()
    try:
        with pytest.raises(AdapterUnavailable, match="401"):
            await cw.open_handoff(await angry_ticket(store))
    finally:
        await cw.stop()


def test_configuration_errors_name_the_variable():
    with pytest.raises(ConfigError, match="KEFU_CHATWOOT_TOKEN"):
        ChatwootAdapter(None, url="http://x", account_id="1", inbox_id="1", webhook_token="t")
    with pytest.raises(ConfigError, match="TEAMS"):
        parse_teams("senior=three")
    assert parse_teams("senior=3, cards=4") == {"senior": 3, "cards": 4}


async def test_contract_console_relays_chatwoot_webhooks(store, chatwoot, rasa_api, tickets_url, tmp_path):
    env = console_fixtures.kefu_env(
        tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
        KEFU_HANDOFF_ADAPTER="chatwoot", KEFU_CHATWOOT_URL=chatwoot.url, KEFU_CHATWOOT_TOKEN=chatwoot.token,
        KEFU_CHATWOOT_ACCOUNT_ID=str(chatwoot.account_id), KEFU_CHATWOOT_INBOX_ID=str(chatwoot.inbox_id),
        KEFU_CHATWOOT_WEBHOOK_TOKEN=WEBHOOK_TOKEN, KEFU_CHATWOOT_TEAMS="senior=9",
    )
    console = console_fixtures.start_console(env, tmp_path / "console.log")
    try:
        ticket = await angry_ticket(store)
        deadline = time.monotonic() + 15
        conv_id = None
        while conv_id is None and time.monotonic() < deadline:
            conv_id = next((cid for cid, c in chatwoot.conversations.items()
                            if c["custom_attributes"].get("kefu_ticket") == ticket.id), None)
            time.sleep(0.2)
        assert conv_id is not None and chatwoot.conversations[conv_id]["status"] == "open"
        url = console.url + "/handoff/webhooks/chatwoot"
        body = {"event": "message_created", "message_type": "outgoing", "private": False, "content": "您好，我是小林",
                "conversation": {"id": conv_id}, "sender": {"id": 5, "name": "Lin", "type": "user"}}
        assert requests.post(url, json=body, params={"token": "nope"}).status_code == 401
        assert requests.post(url, data=b"{oops", params={"token": WEBHOOK_TOKEN}).status_code == 400
        assert requests.post(url, json=body, params={"token": WEBHOOK_TOKEN}).status_code == 200
        assert rasa_api.bot_texts(ticket.conversation_id) == ["您好，我是小林"]
        assert rasa_api.kinds(ticket.conversation_id) == ["handoff:started", "bot"], "claimed, then the reply"
        current = await store.get(ticket.id)
        assert current.status == "assigned" and current.agent == "chatwoot:Lin"
        resolved = {"event": "conversation_status_changed", "id": conv_id, "status": "resolved"}
        assert requests.post(url, json=resolved, params={"token": WEBHOOK_TOKEN}).status_code == 200
        assert (await store.get(ticket.id)).status == "closed"
        assert rasa_api.kinds(ticket.conversation_id)[-3:] == ["resume", "handoff:ended", "execute:utter_ask_rating"]
    finally:
        console.stop()
