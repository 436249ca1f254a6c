"""Property-based fuzzing of the WeChat (Official Account, WeCom, kf) and Slack webhooks, each a real
channel on a live Sanic server (Rasa's `register`), signed and unsigned, malformed XML/JSON, entities,
hostile query strings. Property: no 5xx, every 4xx carries a message, no configured secret in any
captured log record. Requests per endpoint go to bench/out/fuzz-summary.json ("channels")."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any, Iterator

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from custom_components.channels.slack import KefuSlackInput
from custom_components.channels.wechat.common import Envelope
from custom_components.channels.wechat.kf import WeChatKfInput
from custom_components.channels.wechat.mp import WeChatMPInput
from custom_components.channels.wechat.state import open_state
from custom_components.channels.wechat.state_pg import KfCursorStore
from custom_components.channels.wechat.wecom import WeComInput
from tests import fuzz_support as fz
from tests.custom_components.channels.conftest import APP_SECRET, CORP_ID, KF_SECRET, MP_APP_ID, MP_SECRET
from tests.custom_components.channels.fake_slack_api import FakeSlack
from tests.custom_components.channels.live import LiveAiohttp
from tests.custom_components.channels.test_wechat_crypto import BILLION_LAUGHS, XXE
from tests.custom_components.channels.wechat_http import (
    Served,
    encrypted_request,
    serve,
    served_channels,
    signed_params,
    text_xml,
    xml_of,
)

pytestmark = pytest.mark.timeout(300)
TOKEN = "fuzz-wechat-token-DO-NOT-LOG"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SLACK_TOKEN, SLACK_SECRET = "xoxb-fuzz-token-DO-NOT-LOG", "slack-fuzz-secret-DO-NOT-LOG"
SECRETS = [TOKEN, AES_KEY, MP_SECRET, APP_SECRET, KF_SECRET, SLACK_TOKEN, SLACK_SECRET]
XML_TEXT = st.one_of(fz.HOSTILE_TEXT, st.sampled_from(["]]>", "<a>", "&amp;", "&xxe;", "\x01\x1f", "/ask_human",
                                                        "human", "buttons", "long"]))
BROKEN = st.sampled_from([XXE, BILLION_LAUGHS, b"", b"<xml>", b"<xml><Encrypt>", b"not xml", b"\xff\xfe<x/>",
                          b"<xml>" + b"<a>" * 5000 + b"</xml>", b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>"])


@pytest.fixture(scope="module")
def tally() -> Iterator[fz.Tally]:
    result = fz.Tally("channels")
    yield result
    result.write()


@pytest.fixture()
def servers() -> Iterator[list[Served]]:
    yield from served_channels()


@pytest.fixture(autouse=True)
def no_secret_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    leaked = [s for s in SECRETS if s in caplog.text]
    assert not leaked, f"{len(leaked)} configured secret(s) in the captured logs"


def record(tally: fz.Tally, endpoint: str, resp: requests.Response) -> None:
    problem = tally.check(endpoint, resp.status_code, resp.content, resp.headers.get("content-type", ""))
    assert problem is None, problem


def wechat_requests(envelope: Envelope, to: str) -> st.SearchStrategy[tuple[dict[str, str], bytes]]:
    """(query, body): signed plaintext or encrypted messages with hostile content, or broken/unsigned ones."""
    def plain(sender: str, content: str, extra: dict[str, str]) -> tuple[dict[str, str], bytes]:
        return signed_params(TOKEN), text_xml(sender or "o", content, to=to, **extra).encode("utf-8", "replace")

    def sealed(sender: str, content: str) -> tuple[dict[str, str], bytes]:
        return encrypted_request(envelope, TOKEN, text_xml(sender or "o", content, to=to), to=to)

    params = st.dictionaries(st.sampled_from(["timestamp", "nonce", "signature", "msg_signature", "encrypt_type",
                                              "echostr"]), fz.HOSTILE_TEXT, max_size=5)
    extra = st.dictionaries(st.sampled_from(["MsgType", "Event", "EventKey", "AgentID", "Token", "OpenKfId"]),
                            XML_TEXT, max_size=3)
    return st.one_of(
        st.builds(plain, XML_TEXT, XML_TEXT, extra),
        st.builds(sealed, XML_TEXT, XML_TEXT),
        st.tuples(st.just(signed_params(TOKEN)), BROKEN),
        st.tuples(params, st.one_of(BROKEN, XML_TEXT.map(lambda t: xml_of({"Content": t}).encode()))),
    )


def fuzz_wechat(served: Served, envelope: Envelope, to: str, tally: fz.Tally, name: str) -> None:
    @fz.FUZZ
    @given(request=wechat_requests(envelope, to),
           content_type=st.sampled_from(["text/xml", "text/xml", "text/xml", "application/json", ""]))
    def run(request: tuple[dict[str, str], bytes], content_type: str) -> None:
        query, body = request
        resp = requests.post(served.url, params=query, data=body, headers={"Content-Type": content_type},
                             timeout=30)
        record(tally, f"POST /webhooks/{name}/webhook", resp)

    @fz.FUZZ
    @given(query=st.dictionaries(st.sampled_from(["timestamp", "nonce", "signature", "msg_signature", "echostr"]),
                                 fz.HOSTILE_TEXT, max_size=5), signed=st.booleans())
    def verify(query: dict[str, str], signed: bool) -> None:
        params = {**query, **signed_params(TOKEN)} if signed else query
        record(tally, f"GET /webhooks/{name}/webhook", requests.get(served.url, params=params, timeout=30))

    run()
    verify()


def test_wechat_mp_webhook_never_answers_5xx(servers, channel_db, fake_api, tally) -> None:
    channel = WeChatMPInput(token=TOKEN, app_id=MP_APP_ID, secret=MP_SECRET, encoding_aes_key=AES_KEY,
                            mode="compatible", api_base=fake_api[1], reply_budget_s=0.3, state=open_state(channel_db),
                            menu_intents={"BALANCE": "/check_balance"})
    served = serve(servers, channel)
    fuzz_wechat(served, Envelope(TOKEN, AES_KEY, MP_APP_ID, enterprise=False), "gh_kefu_test", tally, "wechat_mp")


def test_wecom_webhook_never_answers_5xx(servers, channel_db, fake_api, tally) -> None:
    channel = WeComInput(token=TOKEN, app_id=CORP_ID, secret=APP_SECRET, encoding_aes_key=AES_KEY, mode="safe",
                         agent_id="218", api_base=fake_api[1], reply_budget_s=0.3, state=open_state(channel_db))
    served = serve(servers, channel)
    fuzz_wechat(served, Envelope(TOKEN, AES_KEY, CORP_ID, enterprise=True), CORP_ID, tally, "wecom")


def test_wechat_kf_webhook_never_answers_5xx(servers, channel_db, fake_api, tally) -> None:
    channel = WeChatKfInput(token=TOKEN, app_id=CORP_ID, secret=KF_SECRET, encoding_aes_key=AES_KEY, mode="safe",
                            api_base=fake_api[1], state=open_state(channel_db), cursors=KfCursorStore(channel_db))
    served = serve(servers, channel)
    fuzz_wechat(served, Envelope(TOKEN, AES_KEY, CORP_ID, enterprise=True), CORP_ID, tally, "wechat_kf")


def slack_headers(body: bytes, secret: str, stamp: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def slack_event(kind: Any, event: dict[str, Any], event_id: Any) -> bytes:
    return json.dumps({"type": kind, "event_id": event_id, "team_id": "T1", "challenge": event_id,
                       "event": event}).encode()


def test_slack_webhook_never_answers_5xx(servers, channel_db, tally) -> None:
    fake = FakeSlack(SLACK_TOKEN)
    api = LiveAiohttp(fake.app()).start()
    try:
        channel = KefuSlackInput(SLACK_TOKEN, slack_signing_secret=SLACK_SECRET, api_url=f"{api.url}/api/",
                                 state=open_state(channel_db))
        served = serve(servers, channel)
        event = st.fixed_dictionaries({"type": st.sampled_from(["message", "app_mention"]) | fz.HOSTILE_TEXT},
                                      optional={"channel_type": fz.JSON_VALUES, "channel": fz.JSON_VALUES,
                                                "user": fz.JSON_VALUES, "text": fz.JSON_VALUES, "ts": fz.JSON_VALUES,
                                                "bot_id": fz.JSON_VALUES, "subtype": fz.JSON_VALUES})
        kinds = st.sampled_from(["event_callback", "url_verification"]) | fz.JSON_VALUES
        bodies = st.one_of(st.builds(slack_event, kinds, event, fz.JSON_VALUES),
                           fz.JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=100),
                           st.just(fz.nested(5000).encode()),
                           fz.HOSTILE_TEXT.map(lambda t: ("payload=" + t).encode("utf-8", "replace")))

        @fz.FUZZ
        @given(body=bodies, sign_as=st.sampled_from([SLACK_SECRET, SLACK_SECRET, "wrong", None]),
               stamp=st.sampled_from(["now", "now", "0", "-1", "abc", "9" * 30, ""]),
               content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))
        def run(body: bytes, sign_as: Any, stamp: str, content_type: str) -> None:
            timestamp = str(int(time.time())) if stamp == "now" else stamp
            headers = slack_headers(body, sign_as, timestamp) if sign_as else {}
            resp = requests.post(served.url, data=body, headers={"Content-Type": content_type, **headers},
                                 timeout=30)
            record(tally, "POST /webhooks/slack/webhook", resp)

        run()
    finally:
        api.stop()


def test_oversized_query_string_is_a_413_about_the_headers(servers, channel_db, fake_api, tally) -> None:
    """Found by the fuzzing: Sanic's header-limit error was answered "request body larger than ..." on a GET."""
    channel = WeChatMPInput(token=TOKEN, app_id=MP_APP_ID, secret=MP_SECRET, encoding_aes_key=AES_KEY,
                            mode="compatible", api_base=fake_api[1], state=open_state(channel_db))
    served = serve(servers, channel)
    resp = requests.get(served.url, params={"echostr": "a" * 20_000}, timeout=30)
    assert resp.status_code == 413
    assert resp.json()["reason"] == "request line and headers exceed the size limit"


def test_non_ascii_signature_is_a_403(servers, channel_db, fake_api, tally) -> None:
    """Found by the fuzzing: hmac.compare_digest raised TypeError on a non-ASCII msg_signature (a 500)."""
    channel = WeComInput(token=TOKEN, app_id=CORP_ID, secret=APP_SECRET, encoding_aes_key=AES_KEY, mode="safe",
                         agent_id="218", api_base=fake_api[1], state=open_state(channel_db))
    served = serve(servers, channel)
    params = {**signed_params(TOKEN), "echostr": "0", "msg_signature": "\x80签名"}
    resp = requests.get(served.url, params=params, timeout=30)
    assert resp.status_code == 403 and "signature" in resp.text
