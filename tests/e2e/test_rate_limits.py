"""Rate limits on the customer channels (kefu/ratelimit.py), against a Kefu stack of this module's own
with small limits: before them, any number of anonymous messages and new senders reached NLU.

Each test sends from its own client address through X-Real-IP, which the stack's Sanic trusts
(SANIC_REAL_IP_HEADER, the documented proxy setting), so the tests do not share counters.
"""

from __future__ import annotations

import queue
import time
import uuid
from typing import Iterator

import pytest
import requests

from kefu.config import Settings
from kefu.pgserver import with_database
from ops.runner import Stack
from tests.e2e.test_socketio import Client
from tests.servers import drop_database, require_model, stack_settings

pytestmark = pytest.mark.servers

WINDOW = 10  # seconds: long enough for the allowed messages to pass NLU, short enough to wait out once
LIMITS = {
    "KEFU_RATE_IP": f"4/{WINDOW} seconds",
    "KEFU_RATE_SENDER": f"2/{WINDOW} seconds",
    "KEFU_RATE_NEW_SENDERS": f"2/{WINDOW} seconds",
    "SANIC_REAL_IP_HEADER": "x-real-ip",
}


@pytest.fixture(scope="module")
def limited_stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    database = f"kefu_rate_{uuid.uuid4().hex[:8]}"
    settings = stack_settings(tmp_path_factory.mktemp("var"), with_database(pg_admin_url, database))
    stack = Stack(settings, require_model())
    try:
        with pytest.MonkeyPatch.context() as env:  # the children copy the environment when they start
            for key, value in LIMITS.items():
                env.setenv(key, value)
            stack.start()
        send(settings, "warm-up", "你好", ip="10.9.9.9")
        yield settings
    finally:
        stack.stop()
        drop_database(pg_admin_url, database)


def send(settings: Settings, sender: str, text: str, ip: str) -> requests.Response:
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    return requests.post(url, json={"sender": sender, "message": text}, headers={"X-Real-IP": ip}, timeout=120)


def address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_an_address_gets_429_after_its_limit_then_again_after_the_window(limited_stack):
    ip = address()
    statuses = [send(limited_stack, sender, "你好", ip).status_code for sender in ("a1", "a2", "a1", "a2")]
    assert statuses == [200] * 4
    refused = send(limited_stack, "a1", "你好", ip)
    assert refused.status_code == 429, refused.text
    assert refused.json()["reason"] == "too many messages from this address"
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert send(limited_stack, "a3", "你好", address()).status_code == 200, "another address is not limited"
    time.sleep(int(refused.headers["Retry-After"]) + 0.5)
    assert send(limited_stack, "a2", "你好", ip).status_code == 200, "the window has passed"


def test_a_sender_gets_429_after_its_limit(limited_stack):
    sender = f"s-{uuid.uuid4().hex[:8]}"
    assert [send(limited_stack, sender, "你好", address()).status_code for _ in range(2)] == [200, 200]
    refused = send(limited_stack, sender, "你好", address())  # a new address does not help
    assert refused.status_code == 429 and refused.json()["reason"] == "too many messages in this conversation"


def test_an_address_creates_only_so_many_new_senders(limited_stack):
    ip = address()
    assert [send(limited_stack, f"n{i}-{ip}", "转人工", ip).status_code for i in range(2)] == [200, 200]
    refused = send(limited_stack, f"n3-{ip}", "转人工", ip)
    assert refused.status_code == 429 and refused.json()["reason"] == "too many new conversations from this address"
    assert send(limited_stack, f"n0-{ip}", "你好", ip).status_code == 200, "a known sender goes on"


class ClientFrom(Client):
    def __init__(self, port: int, ip: str) -> None:
        super().__init__(port)
        self.ip = ip

    def connect(self, session_id: object = None) -> str:
        self.sio.connect(f"http://127.0.0.1:{self.port}", socketio_path="/socket.io", transports=["websocket"],
                         headers={"X-Real-IP": self.ip})
        self.sio.emit("session_request", {"session_id": session_id})
        return self.session.get(timeout=10)


def test_socketio_gets_an_error_event_and_no_reply_past_the_limit(limited_stack):
    client = ClientFrom(limited_stack.rasa_port, address())
    try:
        session = client.connect()
        assert client.say(session, "你好") and client.say(session, "你好")
        client.sio.emit("user_uttered", {"session_id": session, "message": "你好"})
        error = client.errors.get(timeout=30)
        assert error["reason"] == "too many messages in this conversation" and 1 <= error["retry_after"] <= WINDOW
        with pytest.raises(queue.Empty):
            client.bot.get(timeout=2)  # never reached NLU
    finally:
        client.sio.disconnect()
