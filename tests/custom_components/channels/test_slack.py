"""Slack channel against a live server (Rasa's `register`) and a local Slack Web API:
signatures, replayed timestamps, retries deduplicated across processes, Block Kit buttons,
and malformed input."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any, Iterator, Optional
from urllib.parse import urlencode

import pytest
import requests

from custom_components.channels.slack import KefuSlackInput
from custom_components.channels.wechat.state import open_state
from tests.custom_components.channels.fake_slack_api import FakeSlack
from tests.custom_components.channels.live import LiveAiohttp, wait_until
from tests.custom_components.channels.wechat_http import Served, serve, served_channels

BOT_TOKEN = "xoxb-test-token-DO-NOT-LOG"
SIGNING_SECRET = "slack-signing-secret-DO-NOT-LOG"


@pytest.fixture()
def slack_api() -> Iterator[tuple[FakeSlack, str]]:
    fake = FakeSlack(BOT_TOKEN)
    server = LiveAiohttp(fake.app()).start()
    try:
        yield fake, f"{server.url}/api/"
    finally:
        server.stop()


@pytest.fixture()
def make_slack(channel_db: str, slack_api) -> Iterator[Any]:
    _, api_url = slack_api

    def make(servers: list[Served]) -> Served:
        channel = KefuSlackInput(BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, api_url=api_url,
                                 state=open_state(channel_db))
        return serve(servers, channel)

    yield make


@pytest.fixture()
def servers() -> Iterator[list[Served]]:
    yield from served_channels()


def signed(body: bytes, secret: str = SIGNING_SECRET, timestamp: Optional[int] = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(text: str, user: str = "U123", event_id: Optional[str] = None) -> bytes:
    return json.dumps({
        "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "team_id": "T1",
        "event": {"type": "message", "channel_type": "im", "channel": "D42", "user": user, "text": text,
                  "ts": f"{time.time():.6f}"},
    }).encode()


def post(url: str, body: bytes, headers: dict[str, str], content_type: str = "application/json") -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type, **headers}, timeout=20)


def test_signed_message_is_answered_through_the_web_api(make_slack, servers, slack_api) -> None:
    fake, _ = slack_api
    slack = make_slack(servers)
    body = event_body("你好")
    assert post(slack.url, body, signed(body)).status_code == 200
    assert wait_until(lambda: len(fake.posted) == 1)
    assert slack.bot.texts() == ["你好"] and fake.posted[0]["channel"] == "D42"
    assert fake.posted[0]["text"] == "echo: 你好"


def test_unsigned_wrongly_signed_and_replayed_requests_are_refused(make_slack, servers) -> None:
    slack = make_slack(servers)
    body = event_body("hello")
    assert post(slack.url, body, {}).status_code == 401
    assert post(slack.url, body, signed(body, secret="another-app")).status_code == 401
    tampered = body.replace(b"hello", b"HELLO")
    assert post(slack.url, tampered, signed(body)).status_code == 401
    stale = int(time.time()) - 6 * 60  # correctly signed, but six minutes old: a replay
    assert post(slack.url, body, signed(body, timestamp=stale)).status_code == 401
    assert post(slack.url, body, {**signed(body), "X-Slack-Request-Timestamp": "abc"}).status_code == 401
    time.sleep(0.3)
    assert slack.bot.received == []


def test_retries_are_processed_once_even_across_processes(make_slack, servers, slack_api) -> None:
    fake, _ = slack_api
    first, second = make_slack(servers), make_slack(servers)
    body = event_body("only once", event_id=f"Ev-retry-{uuid.uuid4().hex[:8]}")
    assert post(first.url, body, signed(body)).status_code == 200
    for num, reason, target in ((1, "http_timeout", first), (2, "http_error", second), (3, "unknown", second)):
        headers = {**signed(body), "X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}
        resp = post(target.url, body, headers)
        assert resp.status_code == 200 and resp.headers.get("X-Slack-No-Retry") == "1"
    assert wait_until(lambda: len(fake.posted) >= 1)
    time.sleep(0.5)
    assert first.bot.texts() + second.bot.texts() == ["only once"] and len(fake.posted) == 1


def test_a_retry_of_a_lost_delivery_is_processed(make_slack, servers) -> None:
    """Rasa alone drops `http_timeout` retries even when the first delivery never arrived."""
    slack = make_slack(servers)
    body = event_body("first delivery lost", event_id=f"Ev-lost-{uuid.uuid4().hex[:8]}")
    headers = {**signed(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert post(slack.url, body, headers).status_code == 200
    assert wait_until(lambda: slack.bot.texts() == ["first delivery lost"])


def test_buttons_are_block_kit_and_a_click_is_the_payload(make_slack, servers, slack_api) -> None:
    fake, _ = slack_api
    slack = make_slack(servers)
    body = event_body("buttons")
    post(slack.url, body, signed(body))
    assert wait_until(lambda: len(fake.posted) == 1)
    blocks = fake.posted[0]["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    assert blocks[0] == {"type": "section", "text": {"type": "plain_text", "text": "请选择："}}
    assert blocks[1]["type"] == "actions"
    assert [(e["type"], e["text"]["text"], e["value"]) for e in blocks[1]["elements"]] == [
        ("button", "查余额", "/check_balance"), ("button", "找人工", "/ask_human")]
    payload = {"type": "block_actions", "user": {"id": "U123"}, "channel": {"id": "D42"},
               "message": {"ts": "1.2"}, "actions": [{"type": "button", "value": "/check_balance"}]}
    click = urlencode({"payload": json.dumps(payload)}).encode()
    assert post(slack.url, click, signed(click), "application/x-www-form-urlencoded").status_code == 200
    assert wait_until(lambda: slack.bot.texts() == ["buttons", "/check_balance"])


def test_url_verification_challenge(make_slack, servers) -> None:
    slack = make_slack(servers)
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "token": "legacy"}).encode()
    resp = post(slack.url, body, signed(body))
    assert resp.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"x" * (300 * 1024), "application/json", 413),
        (b'{"type": "event_callback", "event": ', "application/json", 400),
        (b'["not", "an", "object"]', "application/json", 400),
        (b'{"event": "not an object"}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"", "application/json", 400),
        (b"<xml/>", "text/xml", 415),
        (b"nopayload=1", "application/x-www-form-urlencoded", 400),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded", 400),
        (b"payload=not-json", "application/x-www-form-urlencoded", 400),
    ],
    ids=["oversized", "truncated-json", "json-array", "event-not-object", "not-utf8", "empty", "xml",
         "form-without-payload", "payload-array", "payload-not-json"],
)
def test_malformed_requests_get_a_4xx_not_a_500(make_slack, servers, body: bytes, content_type: str,
                                                status: int) -> None:
    slack = make_slack(servers)
    assert post(slack.url, body, signed(body), content_type).status_code == status
    assert slack.bot.received == []


def test_no_secret_or_message_text_in_logs(make_slack, servers, slack_api, caplog: pytest.LogCaptureFixture) -> None:
    fake, _ = slack_api
    caplog.set_level(logging.DEBUG)
    slack = make_slack(servers)
    body = event_body("PRIVATE-SLACK-TEXT card 6222020202020202")
    post(slack.url, body, signed(body))
    post(slack.url, body, signed(body, secret="wrong"))
    assert wait_until(lambda: len(fake.posted) == 1)
    logged = caplog.text + repr(slack.channel)
    for secret in (BOT_TOKEN, SIGNING_SECRET, "PRIVATE-SLACK-TEXT", "6222020202020202"):
        assert secret not in logged


def test_a_retry_after_failed_processing_is_processed(make_slack, servers, channel_db: str) -> None:
    """claim → process → done, or release: a failure lets Slack's retry in; a success keeps it out."""
    slack = make_slack(servers)
    crash = event_body("crash", event_id=f"Ev-crash-{uuid.uuid4().hex[:8]}")
    assert post(slack.url, crash, signed(crash)).status_code == 200
    assert wait_until(lambda: slack.bot.texts() == ["crash"])
    key = "slack:" + json.loads(crash)["event_id"]
    state = open_state(channel_db)
    assert wait_until(lambda: slack.run(state.get(key)) is None), "released after the failure"
    retry = {**signed(crash), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    assert post(slack.url, crash, retry).status_code == 200
    assert wait_until(lambda: slack.bot.texts() == ["crash", "crash"]), "the retry is processed"

    ok = event_body("fine", event_id=f"Ev-ok-{uuid.uuid4().hex[:8]}")
    assert post(slack.url, ok, signed(ok)).status_code == 200
    ok_key = "slack:" + json.loads(ok)["event_id"]
    assert wait_until(lambda: slack.run(state.get(ok_key)) == "done")
    resp = post(slack.url, ok, {**signed(ok), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    assert resp.headers.get("X-Slack-No-Retry") == "1"
    time.sleep(0.3)
    assert slack.bot.texts() == ["crash", "crash", "fine"]


def test_the_lease_of_a_crashed_process_expires(make_slack, servers, channel_db: str) -> None:
    slack = make_slack(servers)
    body = event_body("after a crash", event_id=f"Ev-lease-{uuid.uuid4().hex[:8]}")
    state = open_state(channel_db)
    assert slack.run(state.claim("slack:" + json.loads(body)["event_id"], "processing", 1))  # a process that died
    blocked = post(slack.url, body, {**signed(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    assert blocked.headers.get("X-Slack-No-Retry") == "1", "another process is still within its lease"
    assert wait_until(lambda: slack.run(state.get("slack:" + json.loads(body)["event_id"])) is None)
    retry = {**signed(body), "X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_error"}
    assert post(slack.url, body, retry).status_code == 200
    assert wait_until(lambda: slack.bot.texts() == ["after a crash"])
