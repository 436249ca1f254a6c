"""Hostile and malformed requests to the REST channel: a 4xx or a sensible reply, never a 500."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.custom_components.channels.raw_http import post_chunked, post_declared

pytestmark = pytest.mark.servers


@pytest.fixture
def url(kefu_stack) -> str:
    return f"http://127.0.0.1:{kefu_stack.rasa_port}/webhooks/rest/webhook"


def post(url: str, body: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=120)


@pytest.mark.parametrize(
    "body, content_type, status, reason",
    [
        (b'{"sender": "a", "message": ""}', "application/json", 400, "empty"),
        (b'{"sender": "a", "message": "   \\u0000 "}', "application/json", 400, "empty"),
        (b'{"sender": "a", "message": "hi"', "application/json", 400, "not valid JSON"),
        (b"", "application/json", 400, "empty"),
        (b'{"sender": "a", "message": "hi"}', "text/plain", 415, "application/json"),
        (b'{"sender": "a", "message": "\xff\xfe"}', "application/json", 400, "UTF-8"),
        (b'["sender", "message"]', "application/json", 400, "JSON object"),
        (b'{"sender": {"$gt": ""}, "message": "hi"}', "application/json", 400, "sender"),
        (b'{"sender": "a", "message": ["hi"]}', "application/json", 400, "string"),
        (b'{"sender": "a", "message": "' + b"x" * 300_000 + b'"}', "application/json", 413, "larger"),
        (b'{"sender":"a","message":"x","metadata":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json",
         400, "nested deeper"),  # json.loads raises RecursionError: a 500 before
        (b'{"sender":"a","message":"x","metadata":{"k":' + b"[" * 80 + b"]" * 80 + b"}}", "application/json",
         400, "nested deeper"),
    ],
    ids=["empty-message", "blank-message", "truncated-json", "empty-body", "text-plain", "not-utf8", "json-array",
         "operator-sender", "list-message", "300-kb", "nested-100k", "nested-80"],  # short: ids go into the env
)
def test_rejected_with_a_reason(url, body, content_type, status, reason):
    resp = post(url, body, content_type)
    assert resp.status_code == status
    assert reason in resp.json()["reason"]


def test_oversized_bodies_get_413_before_they_are_read(kefu_stack):
    """Rasa's Sanic app buffered up to 100 MB, chunked or not, before the channel's size check ran."""
    port, path, total = kefu_stack.rasa_port, "/webhooks/rest/webhook", 32 * 1024 * 1024
    chunked = post_chunked(port, path, total=total)  # no Content-Length
    assert chunked.status == 413 and "larger than 262144 bytes" in chunked.body.decode(), chunked
    assert chunked.sent < total, "the server stopped reading: memory stays bounded"
    announced = post_declared(port, path, declared=90 * 1024 * 1024, timeout=30)
    assert announced.status == 413, "answered from the Content-Length, before the body arrives"
    assert requests.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook", json={"sender": "a", "message": "你好"},
                         timeout=60).status_code == 200, "the server is fine"


def test_twenty_thousand_characters_get_a_reply(url):
    text = ("我的订单一直没有到，" * 2000)[:20000]
    resp = requests.post(url, json={"sender": f"long-{uuid.uuid4().hex[:6]}", "message": text}, timeout=120)
    assert resp.status_code == 200
    assert resp.json() and resp.json()[0]["text"]


@pytest.mark.parametrize("text", ["🙂🙂🙂", "😡😡", "!!!???", "<script>alert(1)</script>", "' OR 1=1; --"])
def test_odd_messages_get_a_reply(url, text):
    resp = requests.post(url, json={"sender": f"odd-{uuid.uuid4().hex[:6]}", "message": text}, timeout=60)
    assert resp.status_code == 200
    assert resp.json(), "the assistant should answer something"


def test_unknown_sender_starts_a_new_conversation(url):
    resp = requests.post(url, json={"sender": f"never-seen-{uuid.uuid4().hex}", "message": "hello"}, timeout=60)
    assert resp.status_code == 200 and resp.json()


def test_server_is_healthy_after_the_abuse(kefu_stack, url):
    assert requests.get(f"http://127.0.0.1:{kefu_stack.rasa_port}/webhooks/rest/", timeout=10).json() == {
        "status": "ok"
    }
    assert requests.post(url, json={"sender": "after", "message": "你好"}, timeout=60).status_code == 200
