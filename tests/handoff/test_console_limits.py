"""The console's JSON API against a real console process: deeply nested JSON is a 400 (it was a
500 from json.loads' RecursionError), and oversized bodies get 413 before they are read."""

from __future__ import annotations

import pytest

from tests.custom_components.channels.raw_http import post_chunked, post_declared
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import login

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

TICKET = "/api/tickets/" + "0" * 32


@pytest.mark.parametrize("depth", [30_000, 100])
def test_deeply_nested_json_is_a_400_with_a_reason(console, depth):
    client = login(console, "alice")
    body = '{"text": "hi", "extra": ' + "[" * depth + "]" * depth + "}"
    resp = client.http.post(client.base + TICKET + "/messages", data=body.encode(),
                            headers={"X-CSRF-Token": client.csrf, "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert "nested deeper than 64 levels" in resp.json()["detail"]
    assert client.post(TICKET + "/messages", {"text": "hi"}).status_code == 404, "a sane body reaches the store"


def test_oversized_bodies_get_413_before_they_are_read(console):
    port = int(console.url.rsplit(":", 1)[1])
    chunked = post_chunked(port, TICKET + "/messages", total=32 * 1024 * 1024)
    assert chunked.status == 413 and chunked.sent < 32 * 1024 * 1024, chunked
    assert post_declared(port, TICKET + "/messages", declared=50 * 1024 * 1024, timeout=30).status == 413
