"""Contract tests: the Slack adapter against a local server implementing the documented subset of
Slack's Web API (`chat.postMessage`), Events API signature checks, and its webhook through the console."""

from __future__ import annotations

import json
import time
import uuid
from typing import AsyncIterator

import pytest
import requests

from handoff.adapters.base import AdapterLinks, WebhookRequest
from handoff.adapters.http import AdapterUnavailable
from handoff.adapters.slack import SlackAdapter, sign, verify_signature
from kefu.errors import BadInput, ConfigError
from tests.handoff import console_fixtures
from tests.handoff.livechat_servers import SlackServer

rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
async def adapter(slack: SlackServer, links: AdapterLinks) -> AsyncIterator[SlackAdapter]:
    sa = SlackAdapter(links, bot_token=slack.token, signing_secret=SECRET, channel=slack.channel, api_url=slack.url)
    await sa.start()
    yield sa
    await sa.stop()


def signed(body: object, secret: str = SECRET, timestamp: int | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return WebhookRequest(raw, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, raw)})


def reply(thread: str, text: str, **extra) -> dict:
    event = {"type": "message", "channel": "C0AGENTS", "user": "U42", "text": text, "ts": "1700000001.1",
             "thread_ts": thread, **extra}
    return {"type": "event_callback", "event_id": "Ev" + uuid.uuid4().hex[:8], "event": event}


async def ticket_for(store):
    return await store.create(conversation_id=f"sl-{uuid.uuid4().hex[:6]}", channel="rest", queue="cards",
                              reason="specialist", priority=10, language="en",
                              transcript=[{"role": "customer", "text": "<!channel> my card", "ts": time.time()}])


def test_signature_matches_slacks_documented_example():
    # The worked example of https://api.slack.com/authentication/verifying-requests-from-slack
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
            b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
            b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign(SECRET, "1531420618", body) == expected
    verify_signature(SECRET, WebhookRequest(body, {"X-Slack-Request-Timestamp": "1531420618",
                                                   "X-Slack-Signature": expected}), now=1531420618 + 10)


async def test_contract_thread_per_handoff_and_escaped_customer_text(store, adapter, slack, links):
    ticket = await ticket_for(store)
    await adapter.open_handoff(ticket)
    thread = await links.external_id("slack", ticket.id)
    root = next(p for p in slack.posts if p["ts"] == thread)
    assert "thread_ts" not in root and "&lt;!channel&gt; my card" in root["text"] and "<!channel>" not in root["text"]
    await adapter.relay_customer_message(ticket, "<!here> & <https://evil.example|click>")
    assert slack.thread(thread) == ["customer: &lt;!here&gt; &amp; &lt;https://evil.example|click&gt;"]
    before = len(slack.posts)
    await adapter.open_handoff(ticket)
    assert len(slack.posts) == before, "idempotent: one thread per ticket"
    await adapter.close(ticket, "resolved")
    assert slack.thread(thread)[-1] == "ticket closed: resolved"


async def test_contract_thread_replies_become_agent_messages(store, adapter, links):
    ticket = await ticket_for(store)
    await adapter.open_handoff(ticket)
    thread = await links.external_id("slack", ticket.id)
    [message] = await adapter.receive_agent_message(signed(reply(thread, "Hi, checking &lt;now&gt;")))
    assert (message.ticket_id, message.agent, message.text) == (ticket.id, "slack:U42", "Hi, checking <now>")
    [closing] = await adapter.receive_agent_message(signed(reply(thread, "!close spam")))
    assert closing.close_disposition == "spam" and closing.text == ""
    retry = reply(thread, "once only")
    assert len(await adapter.receive_agent_message(signed(retry))) == 1
    assert await adapter.receive_agent_message(signed(retry)) == [], "Slack's retry of the same event is ignored"
    for body in [reply(thread, "bot echo", bot_id="B1"), reply(thread, "edit", subtype="message_changed"),
                 reply("1600000000.000001", "unknown thread"), reply(thread, "other channel", channel="C0OTHER"),
                 reply(thread, "   "), {"type": "event_callback", "event": {"type": "reaction_added"}},
                 {"type": "app_rate_limited"}]:
        assert await adapter.receive_agent_message(signed(body)) == [], body


async def test_contract_url_verification_gets_the_challenge(adapter):
    request = signed({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    assert await adapter.receive_agent_message(request) == []
    assert adapter.immediate_reply(request) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize("make", [
    lambda: signed({"type": "event_callback"}, secret="another-secret"),
    lambda: signed({"type": "event_callback"}, timestamp=int(time.time()) - 301),
    lambda: signed({"type": "event_callback"}, timestamp=int(time.time()) + 301),
    lambda: WebhookRequest(b"{}", {}),
    lambda: WebhookRequest(b"{}", {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}),
    lambda: WebhookRequest(b'{"a": 1}', {**signed(b'{"a": 2}').headers}),  # body swapped after signing
])
async def test_contract_unsigned_stale_or_tampered_requests_are_401(adapter, make):
    with pytest.raises(BadInput) as exc:
        await adapter.receive_agent_message(make())
    assert exc.value.status == 401


async def test_contract_signed_garbage_is_400(adapter):
    with pytest.raises(BadInput) as exc:
        await adapter.receive_agent_message(signed(b"\xff not json"))
    assert exc.value.status == 400


async def test_contract_slack_errors_are_clear(store, slack, links):
    wrong = SlackAdapter(links, bot_token="xoxb-wrong", signing_secret=SECRET, channel=slack.channel,
                         api_url=slack.url)
    await wrong.start()
    try:
        with pytest.raises(AdapterUnavailable, match="invalid_auth"):
            await wrong.open_handoff(await ticket_for(store))
    finally:
        await wrong.stop()
    with pytest.raises(ConfigError, match="KEFU_SLACK_SIGNING_SECRET"):
        SlackAdapter(links, bot_token="x", channel="C1")


def start_slack_console(slack, rasa_api, tickets_url, tmp_path):
    """A real console process whose handoff adapter is Slack, pointed at the local Slack server."""
    env = console_fixtures.kefu_env(
        tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
        KEFU_HANDOFF_ADAPTER="slack", KEFU_SLACK_API_URL=slack.url, KEFU_SLACK_BOT_TOKEN=slack.token,
        KEFU_SLACK_SIGNING_SECRET=SECRET, KEFU_SLACK_CHANNEL=slack.channel,
    )
    return console_fixtures.start_console(env, tmp_path / "console.log")


def thread_root(slack, ticket_id: str) -> dict:
    """The thread's first post the console wrote for the ticket (waits up to 15 s)."""
    deadline, root = time.monotonic() + 15, None
    while root is None and time.monotonic() < deadline:
        root = next((p for p in slack.posts if ticket_id in p["text"] and "thread_ts" not in p), None)
        time.sleep(0.2)
    assert root is not None, "the console opened a thread for the new ticket"
    return root


async def test_contract_console_relays_signed_slack_events(store, slack, rasa_api, tickets_url, tmp_path):
    console = start_slack_console(slack, rasa_api, tickets_url, tmp_path)
    try:
        ticket = await ticket_for(store)
        root = thread_root(slack, ticket.id)
        url = console.url + "/handoff/webhooks/slack"

        def post(body: object, secret: str = SECRET) -> requests.Response:
            req = signed(body, secret)
            return requests.post(url, data=req.body, headers=dict(req.headers))

        assert post({"type": "url_verification", "challenge": "abc"}).json() == {"challenge": "abc"}
        assert post(reply(root["ts"], "forged"), secret="wrong").status_code == 401
        assert requests.post(url, json=reply(root["ts"], "unsigned")).status_code == 401
        assert post(reply(root["ts"], "Hello from Slack")).status_code == 200
        assert rasa_api.bot_texts(ticket.conversation_id) == ["Hello from Slack"]
        assert (await store.get(ticket.id)).agent == "slack:U42"
        assert post(reply(root["ts"], "!close resolved")).status_code == 200
        closed = await store.get(ticket.id)
        assert closed.status == "closed" and closed.disposition == "resolved"
        assert slack.thread(root["ts"])[-1] == "ticket closed: resolved"
        assert requests.post(console.url + "/handoff/webhooks/chatwoot", json={}).status_code == 404
    finally:
        console.stop()


async def test_contract_close_with_an_unknown_disposition_is_refused_in_the_thread(store, slack, rasa_api,
                                                                                    tickets_url, tmp_path):
    """`!close <anything>` must name one of the console's dispositions; otherwise the ticket stays open."""
    console = start_slack_console(slack, rasa_api, tickets_url, tmp_path)
    try:
        ticket = await ticket_for(store)
        root = thread_root(slack, ticket.id)
        req = signed(reply(root["ts"], "!close <!channel> whatever"))
        url = console.url + "/handoff/webhooks/slack"
        assert requests.post(url, data=req.body, headers=dict(req.headers)).status_code == 200
        still = await store.get(ticket.id)
        assert still.status == "waiting" and still.disposition is None and still.agent is None
        refusal = slack.thread(root["ts"])[-1]
        assert "unknown disposition" in refusal and "resolved, follow_up, escalated" in refusal
        assert "<!channel>" not in refusal  # the agent's text is escaped back into Slack
        req = signed(reply(root["ts"], "!close spam"))
        assert requests.post(url, data=req.body, headers=dict(req.headers)).status_code == 200
        assert (await store.get(ticket.id)).disposition == "spam"
    finally:
        console.stop()
