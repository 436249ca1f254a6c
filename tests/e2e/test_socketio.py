"""The socket.io channel over websockets: session persistence across reconnects, and
bad events dropped with an error event instead of an exception."""

from __future__ import annotations

import json
import queue
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import socketio
import websocket

from tests.custom_components.channels.raw_http import post_chunked, post_declared

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


# --- bad input: sizes, undecodable packets, hostile ids; the widget's typing and handoff events ---


def user_texts(settings, session_id: str) -> list[str]:
    """What Rasa recorded from this customer (via the HTTP API): proves nothing was processed."""
    url = f"http://127.0.0.1:{settings.rasa_port}/conversations/{session_id}/tracker?token={settings.rasa_token}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        events = json.loads(resp.read())["events"]
    return [e.get("text") for e in events if e.get("event") == "user"]


def test_oversized_event_is_rejected_and_not_processed(kefu_stack, client):
    session = client.connect()
    client.sio.emit("user_uttered", {"session_id": session, "message": "我的卡丢了" * 20_000})  # ~300 KB of JSON
    assert "larger than" in client.errors.get(timeout=10)["reason"]
    assert client.bot.empty() and user_texts(kefu_stack, session) == []
    assert client.say(session, "hello")[0], "the connection still works"


def test_packet_over_the_transport_limit_closes_only_that_connection(kefu_stack, client):
    session = client.connect()
    client.sio.emit("user_uttered", {"session_id": session, "message": "x" * (2 * 1024 * 1024)})
    deadline = time.monotonic() + 10
    while client.sio.connected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.sio.connected, "engine.io closes a connection that sends a packet over 1 MB"
    assert user_texts(kefu_stack, session) == []
    other = Client(kefu_stack.rasa_port)
    try:
        assert other.say(other.connect(), "hello")[0], "the server is fine"
    finally:
        other.sio.disconnect()


class RawSocket:
    """A bare engine.io websocket, to send packets no socket.io client would produce."""

    def __init__(self, port: int) -> None:
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10
        )
        assert self.ws.recv().startswith("0{")  # engine.io open
        self.ws.send("40")  # socket.io connect to "/"
        assert self.ws.recv().startswith("40")

    def next_event(self) -> list:
        while True:
            frame = self.ws.recv()
            if frame == "2":  # engine.io ping
                self.ws.send("3")
            elif frame.startswith("42"):
                return json.loads(frame[2:])


@pytest.mark.parametrize(
    "packet",
    ['42["user_uttered",{"session_id":"abc","message":', '42not json at all', "4Z", '42{"a":1}', "42[]", "42[1,2]",
     '42["no_such_event",{}]', '42["connect"]', '42["user_uttered",' + "[" * 100_000 + "]" * 100_000 + "]"],
    ids=["truncated", "not-json", "bad-type", "object", "empty", "numbers", "unknown-event", "connect", "nested"],
)
def test_undecodable_packets_get_an_error_event(kefu_stack, packet):
    raw = RawSocket(kefu_stack.rasa_port)
    try:
        raw.ws.send(packet)
        event = raw.next_event()
        assert event[0] == "kefu_error" and event[1]["reason"], event
        raw.ws.send('42["session_request",{"session_id":null}]')  # the connection is still usable
        assert raw.next_event()[0] == "session_confirm"
    finally:
        raw.ws.close()


HOSTILE_IDS = [
    "../../etc/passwd", "<script>alert(1)</script>", "a b", "id\x00null", "'; DROP TABLE events;--", "é" * 10,
    "", "x" * 65, "room-of-someone-else\n", "${jndi:ldap://x}", "a.b@c:d", "٣٤٥",
]


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_hostile_session_ids_are_replaced_and_rejected(kefu_stack, client, session_id):
    fresh = client.connect(session_id)
    assert fresh != session_id and len(fresh) == 32 and fresh.isalnum()
    client.sio.emit("user_uttered", {"session_id": session_id, "message": "hi"})
    assert client.errors.get(timeout=10)["reason"]
    assert client.bot.empty()


@pytest.mark.parametrize(
    "payload",
    [{"message": "hi", "metadata": "not an object"}, {"message": "hi", "metadata": ["list"]},
     {"message": ["list"]}, {"message": {"text": "hi"}}, {"message": True}],
)
def test_wrong_types_are_rejected(kefu_stack, client, payload):
    session = client.connect()
    client.sio.emit("user_uttered", {"session_id": session, **payload})
    assert client.errors.get(timeout=10)["reason"]
    assert client.bot.empty() and user_texts(kefu_stack, session) == []


def test_a_session_must_be_joined_before_it_is_used(kefu_stack, client):
    client.connect()
    victim = uuid.uuid4().hex
    client.sio.emit("user_uttered", {"session_id": victim, "message": "hi"})
    assert "session_request" in client.errors.get(timeout=10)["reason"]
    assert user_texts(kefu_stack, victim) == []


def test_typing_events_bracket_a_turn(kefu_stack, client):
    typing: queue.Queue = queue.Queue()
    client.sio.on("kefu_typing", typing.put)
    session = client.connect()
    assert client.say(session, "hello")[0]
    assert typing.get(timeout=5) == {"state": "on"}
    assert typing.get(timeout=5) == {"state": "off"}


def push_bot_event(settings, session_id: str, data: dict) -> None:
    url = (
        f"http://127.0.0.1:{settings.rasa_port}/conversations/{session_id}/tracker/events"
        f"?output_channel=latest&execute_side_effects=true&token={settings.rasa_token}"
    )
    body = json.dumps({"event": "bot", "text": None, "data": data}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200


def test_handoff_events_reach_every_tab(kefu_stack, client):
    """The relay's "started"/"ended" (handoff/rasa_api.py) become kefu_handoff in every tab."""
    handoffs: queue.Queue = queue.Queue()
    client.sio.on("kefu_handoff", handoffs.put)
    session = client.connect()
    assert client.say(session, "hello")[0]
    other_tab = Client(kefu_stack.rasa_port)
    other_handoffs: queue.Queue = queue.Queue()
    other_tab.sio.on("kefu_handoff", other_handoffs.put)
    try:
        other_tab.connect(session)
        push_bot_event(kefu_stack, session, {"custom": {"handoff": "started", "queue": "cards", "agent": "Li"}})
        expected = {"state": "started", "queue": "cards", "agent": "Li"}
        assert handoffs.get(timeout=10) == expected and other_handoffs.get(timeout=10) == expected
        push_bot_event(kefu_stack, session, {"custom": {"handoff": "ended"}})
        assert handoffs.get(timeout=10)["state"] == "ended"
        push_bot_event(kefu_stack, session, {"custom": {"handoff": "bogus"}})
        message = client.bot.get(timeout=10)
        assert handoffs.empty(), "an unknown state is not a handoff event"
        assert message["custom"] == {"handoff": "bogus"} and message["id"], "other custom JSON passes through"
    finally:
        other_tab.sio.disconnect()


def test_a_request_for_a_person_answers_without_errors(kefu_stack, client):
    """action_handoff's custom payloads ({"handoff": "queued", ...} or {"callback": ...}) reach the
    client as a kefu_handoff event or a custom message; Rasa's own output raised on them."""
    handoffs: queue.Queue = queue.Queue()
    client.sio.on("kefu_handoff", handoffs.put)
    session = client.connect()
    client.sio.emit("user_uttered", {"session_id": session, "message": "I want to talk to a human agent"})
    messages = [client.bot.get(timeout=60)]
    while True:
        try:
            messages.append(client.bot.get(timeout=2))
        except queue.Empty:
            break
    assert client.errors.empty()
    assert any(m.get("text") for m in messages), messages
    queued = [] if handoffs.empty() else [handoffs.get()]
    callbacks = [m for m in messages if "callback" in (m.get("custom") or {})]
    assert queued or callbacks, (messages, queued)
    if queued:
        assert queued[0]["state"] == "queued" and queued[0]["queue"]


def handshake(port: int, origin: str | None) -> urllib.request.Request:
    headers = {"Origin": origin} if origin else {}
    return urllib.request.Request(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", headers=headers)


def status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_foreign_origin_cannot_open_a_socket(kefu_stack):
    """`cors_allowed_origins=[]` turned engine.io's Origin check off: any site's page could connect."""
    port = kefu_stack.rasa_port
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port}.evil.example"):
        assert status_of(handshake(port, origin)) == 400, origin
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10,
                                        origin=origin)
    assert status_of(handshake(port, f"http://127.0.0.1:{port}")) == 200, "Kefu's own pages connect"
    assert status_of(handshake(port, None)) == 200, "non-browser clients send no Origin"


def test_a_long_polling_post_over_the_cap_gets_413(kefu_stack):
    port = kefu_stack.rasa_port
    with urllib.request.urlopen(handshake(port, None), timeout=10) as resp:
        sid = json.loads(resp.read()[1:])["sid"]
    path, total = f"/socket.io/?EIO=4&transport=polling&sid={sid}", 32 * 1024 * 1024
    chunked = post_chunked(port, path, total=total, content_type="text/plain;charset=UTF-8")
    assert chunked.status == 413 and chunked.sent < total, chunked  # before: 200 after reading all 32 MB
    assert post_declared(port, path, declared=50 * 1024 * 1024, content_type="text/plain", timeout=30).status == 413
