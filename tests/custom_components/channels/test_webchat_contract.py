"""The web chat channel's pure parts (no server): handoff payloads → `kefu_handoff`, session ids,
event sizes and the embedding configuration. The browser and socket.io behaviour is in tests/e2e."""

from __future__ import annotations

import pytest

from custom_components.channels.socketio import MAX_EVENT_BYTES, event_size, handoff_event, valid_session_id
from custom_components.channels.webchat import WebChatInput, parse_frame_ancestors
from kefu.errors import ConfigError


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"handoff": "started", "queue": "cards", "agent": "Li"},
         {"state": "started", "queue": "cards", "agent": "Li"}),
        ({"handoff": "ended"}, {"state": "ended", "queue": None, "agent": None}),
        ({"handoff": "queued", "queue": "general", "reason": "ask_human", "ticket": 7},
         {"state": "queued", "queue": "general", "agent": None}),
        ({"handoff": {"queue": "senior", "reason": "angry"}}, {"state": "queued", "queue": "senior", "agent": None}),
        ({"handoff": "started", "queue": ["x"], "agent": {"a": 1}}, {"state": "started", "queue": None, "agent": None}),
    ],
)
def test_handoff_payloads(custom, expected):
    assert handoff_event(custom) == expected


@pytest.mark.parametrize("custom", [{}, {"handoff": "bogus"}, {"handoff": None}, {"handoff": 1}, {"callback": {}}])
def test_other_custom_payloads_are_not_handoff_events(custom):
    assert handoff_event(custom) is None


def test_agent_names_are_bounded():
    assert len(handoff_event({"handoff": "started", "agent": "A" * 1000})["agent"]) == 64


@pytest.mark.parametrize("value", ["0f" * 16, "abc", "a_b-c", "x" * 64])
def test_valid_session_ids(value):
    assert valid_session_id(value) == value


@pytest.mark.parametrize(
    "value", [None, "", 1, ["a"], {"$ne": 1}, "x" * 65, "a b", "abc\n", "é", "../x", "a.b", "<s>", "a\x00b"]
)
def test_hostile_session_ids(value):
    assert valid_session_id(value) is None


def test_event_size_counts_utf8_bytes_and_unserialisable_data():
    assert event_size({"message": "卡"}) == len('{"message": "卡"}'.encode())
    assert event_size({"x": object()}) > MAX_EVENT_BYTES


def test_frame_ancestors_default_and_lists():
    assert parse_frame_ancestors(None) == "*"
    assert parse_frame_ancestors(["https://shop.example", "https://*.example.com:8443"]) == (
        "https://shop.example https://*.example.com:8443"
    )
    assert WebChatInput.from_credentials({"frame_ancestors": ["'self'"]}).frame_ancestors == "'self'"
    assert WebChatInput.from_credentials(None).frame_ancestors == "*"


@pytest.mark.parametrize(
    "value", [[], ["javascript:alert(1)"], ["https://a.example; script-src *"], [1], "https://a b", [None], {"a": 1}]
)
def test_bad_frame_ancestors_fail_at_start(value):
    with pytest.raises(ConfigError):
        parse_frame_ancestors(value)


def test_widget_origins_are_the_default_frame_ancestors(monkeypatch):
    monkeypatch.setenv("KEFU_WIDGET_ORIGINS", "https://shop.example,http://localhost:8080")
    assert WebChatInput.from_credentials(None).frame_ancestors == "'self' https://shop.example http://localhost:8080"
    assert WebChatInput.from_credentials({"frame_ancestors": ["*"]}).frame_ancestors == "*", "credentials win"
