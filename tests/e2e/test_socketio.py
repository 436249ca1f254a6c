"""The socket.io channel over websockets: session persistence across reconnects, and
bad events dropped with an error event instead of an exception."""

from __future__ import annotations

import queue
import uuid
from typing import Any

import pytest
import socketio

pytestmark = pytest.mark.servers


class Client:
    """A socket.io client (websocket transport) that records what the server emits."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sio = socketio.Client(reconnection=False)
        self.bot: queue.Queue = queue.Queue()
        self.errors: queue.Queue = queue.Queue()
        self.session: queue.Queue = queue.Queue()
        self.sio.on("bot_uttered", self.bot.put)
        self.sio.on("kefu_error", self.errors.put)
        self.sio.on("session_confirm", self.session.put)

    def connect(self, session_id: Any = None) -> str:
        self.sio.connect(f"http://127.0.0.1:{self.port}", socketio_path="/socket.io", transports=["websocket"])
        self.sio.emit("session_request", {"session_id": session_id})
        return self.session.get(timeout=10)

    def say(self, session_id: str, text: str) -> list[str]:
        self.sio.emit("user_uttered", {"session_id": session_id, "message": text})
        texts = [self.bot.get(timeout=60).get("text", "")]
        while True:  # collect the rest of this turn's messages
            try:
                texts.append(self.bot.get(timeout=1.5).get("text", ""))
            except queue.Empty:
                return texts


@pytest.fixture
def client(kefu_stack):
    c = Client(kefu_stack.rasa_port)
    yield c
    c.sio.disconnect()


def test_reconnect_with_the_same_session_continues_the_form(kefu_stack, client):
    session = client.connect()
    replies = client.say(session, "I lost my debit card")
    assert any("last 4 digits" in t for t in replies), replies
    client.sio.disconnect()

    reloaded = Client(kefu_stack.rasa_port)  # a page reload: new socket, same stored session id
    try:
        assert reloaded.connect(session) == session
        replies = reloaded.say(session, "it ends with 4821")
        assert any("phone number" in t for t in replies), replies
    finally:
        reloaded.sio.disconnect()


def test_two_tabs_of_one_session_both_see_the_reply(kefu_stack, client):
    session = client.connect()
    other_tab = Client(kefu_stack.rasa_port)
    try:
        other_tab.connect(session)
        replies = client.say(session, "hello")
        assert replies[0] and other_tab.bot.get(timeout=10).get("text") == replies[0]
    finally:
        other_tab.sio.disconnect()


@pytest.mark.parametrize(
    "payload",
    ["just a string", ["a", "list"], {"message": "no session id"}, {"session_id": {"$ne": 1}, "message": "hi"},
     {"session_id": "x" * 500, "message": "hi"}, {"session_id": "ok-id", "message": 12345}],
)
def test_bad_events_are_dropped_with_an_error_event(client, payload):
    client.connect()
    client.sio.emit("user_uttered", payload)
    assert client.errors.get(timeout=10)["reason"]
    assert client.bot.empty()


def test_hostile_session_request_gets_a_fresh_session(client):
    session = client.connect({"nested": ["object"]})
    assert len(session) == 32 and session.isalnum()
    assert client.say(session, "你好")[0]


def test_empty_and_emoji_messages(client):
    session = client.connect(uuid.uuid4().hex)
    client.sio.emit("user_uttered", {"session_id": session, "message": "   "})
    replies = client.say(session, "🙂🙂")
    assert replies and replies[0], "emoji-only messages get an answer; the blank one before it got none"
    assert len(replies) == 1
