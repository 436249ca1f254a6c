"""Request-size cap, deeply nested JSON and the socket.io Origin check on live servers mounting the
real channels with Rasa's `register()` (the Slack channel is not enabled in the e2e stack; the REST,
socket.io and WeChat routes are also checked against a real `rasa run` in tests/e2e and
test_wechat_e2e.py)."""

from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest
import requests

from custom_components.channels.rest import KefuRestInput
from custom_components.channels.slack import KefuSlackInput
from custom_components.channels.socketio import KefuSocketIOInput
from custom_components.channels.wechat.state import open_state
from kefu.config import load_settings
from kefu.errors import ConfigError
from kefu.inbound import MAX_JSON_DEPTH, json_depth
from tests.custom_components.channels.raw_http import post_chunked, post_declared
from tests.custom_components.channels.test_slack import BOT_TOKEN, SIGNING_SECRET, signed
from tests.custom_components.channels.wechat_http import Served, serve, served_channels

LIMIT = 240 * 1024  # below the default, above the 200 KB nested bodies
HOSTILE = 100_000  # nesting depth of the finding's request body
WIDGET_HOST = "https://shop.example"


@pytest.fixture()
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Served]]:
    monkeypatch.setenv("KEFU_MAX_REQUEST_BYTES", str(LIMIT))
    monkeypatch.setenv("KEFU_WIDGET_ORIGINS", f"{WIDGET_HOST}, http://localhost:8080")
    yield from served_channels()


def nested(depth: int = HOSTILE) -> str:
    return "[" * depth + "]" * depth


def port_of(served: Served) -> int:
    return served.server.port


def test_settings_parse_and_refuse_typos() -> None:
    settings = load_settings({"KEFU_MAX_REQUEST_BYTES": "1000", "KEFU_WIDGET_ORIGINS": "https://a.example, http://b:81/"})
    assert settings.max_request_bytes == 1000 and settings.widget_origins == ("https://a.example", "http://b:81")
    assert load_settings({}).max_request_bytes == 262144 and load_settings({}).widget_origins == ()
    for bad in ({"KEFU_MAX_REQUEST_BYTES": "0"}, {"KEFU_MAX_REQUEST_BYTES": "lots"},
                {"KEFU_WIDGET_ORIGINS": "shop.example"}, {"KEFU_WIDGET_ORIGINS": "https://a.example/path"}):
        with pytest.raises(ConfigError):
            load_settings(bad)


def test_the_launcher_passes_the_limit_to_its_children(tmp_path) -> None:
    from ops.runner import child_env

    settings = load_settings({"KEFU_MAX_REQUEST_BYTES": "1000"}, env_file=tmp_path / "none")
    assert child_env(settings)["KEFU_MAX_REQUEST_BYTES"] == "1000"


def test_json_depth_is_measured_without_recursion() -> None:
    assert json_depth(1) == 0 and json_depth({"a": [1, {"b": []}]}) == 4
    deep: Any = []
    for _ in range(HOSTILE):
        deep = [deep]
    assert json_depth(deep) == HOSTILE + 1


# -- Slack: size cap and nested JSON ------------------------------------------------------------

def slack(servers: list[Served], channel_db: str) -> Served:
    channel = KefuSlackInput(BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, api_url="http://127.0.0.1:9/api/",
                             state=open_state(channel_db))
    return serve(servers, channel)


def test_slack_chunked_and_announced_oversized_bodies_get_413_unread(servers, channel_db) -> None:
    served = slack(servers, channel_db)
    path = "/webhooks/slack/webhook"
    chunked = post_chunked(port_of(served), path, total=32 * 1024 * 1024)
    assert chunked.status == 413, chunked
    assert chunked.sent < 32 * 1024 * 1024, "the server stopped reading: memory stays bounded"
    announced = post_declared(port_of(served), path, declared=50 * 1024 * 1024, timeout=30)
    assert announced.status == 413, "answered from the Content-Length, before the body arrives"
    assert served.bot.received == []


def test_slack_deeply_nested_json_is_a_400(servers, channel_db) -> None:
    served = slack(servers, channel_db)
    for body, content_type in (
        (('{"type": "event_callback", "event": {"type": "message", "blocks": ' + nested() + "}}").encode(),
         "application/json"),
        (urlencode({"payload": '{"actions": ' + nested(20_000) + "}"}).encode(), "application/x-www-form-urlencoded"),
        (json.dumps({"event": {"x": json.loads(nested(MAX_JSON_DEPTH + 5))}}).encode(), "application/json"),
    ):
        resp = requests.post(served.url, data=body, headers={"Content-Type": content_type, **signed(body)},
                             timeout=20)
        assert resp.status_code == 400, resp.text
        assert "nested deeper" in resp.text
    assert served.bot.received == []


# -- REST: nested JSON and the cap on an in-process server (the e2e file covers the real Rasa) ----

def test_rest_deeply_nested_metadata_is_a_400_with_a_reason(servers) -> None:
    served = serve(servers, KefuRestInput())
    body = '{"sender": "a", "message": "x", "metadata": {"k": ' + nested() + "}}"
    resp = requests.post(served.url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=20)
    assert resp.status_code == 400 and "nested deeper" in resp.json()["reason"]
    assert served.bot.received == []


# -- socket.io: Origin check and the long-polling POST ----------------------------------------

def socketio(servers: list[Served]) -> Served:
    return serve(servers, KefuSocketIOInput(session_persistence=True))


def handshake(served: Served, origin: str | None) -> requests.Response:
    headers = {"Origin": origin} if origin else {}
    return requests.get(f"{served.server.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                        headers=headers, timeout=10)


def test_socketio_refuses_foreign_origins(servers) -> None:
    served = socketio(servers)
    own = served.server.url
    for origin in ("http://evil.example", "null", "https://shop.example.evil.test", f"https://{own[7:]}.evil.test"):
        resp = handshake(served, origin)
        assert resp.status_code == 400 and "not an accepted origin" in resp.text, origin
    for origin in (own, WIDGET_HOST, "http://localhost:8080", None):  # Kefu itself, configured hosts, no browser
        resp = handshake(served, origin)
        assert resp.status_code == 200 and '"sid"' in resp.text, origin
    assert handshake(served, WIDGET_HOST).headers.get("Access-Control-Allow-Origin") == WIDGET_HOST


def test_socketio_polling_post_over_the_cap_gets_413(servers) -> None:
    served = socketio(servers)
    sid = json.loads(handshake(served, None).text[1:])["sid"]
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    chunked = post_chunked(port_of(served), path, total=32 * 1024 * 1024, content_type="text/plain;charset=UTF-8")
    assert chunked.status == 413 and chunked.sent < 32 * 1024 * 1024, chunked
    announced = post_declared(port_of(served), path, declared=50 * 1024 * 1024, content_type="text/plain",
                              timeout=30)
    assert announced.status == 413
