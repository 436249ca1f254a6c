"""WeCom application callback over HTTP, including Tencent's published WXBizMsgCrypt sample
request replayed byte for byte (see test_wechat_crypto.py for the source of the vectors)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator

import pytest
import requests

from custom_components.channels.wechat.common import Envelope, parse_xml
from custom_components.channels.wechat.state import open_state
from custom_components.channels.wechat.wecom import WeComInput
from tests.custom_components.channels.conftest import APP_SECRET
from tests.custom_components.channels.live import wait_until
from tests.custom_components.channels.test_wechat_crypto import (
    WECOM_CORP,
    WECOM_KEY,
    WECOM_POST,
    WECOM_POST_BODY,
    WECOM_TOKEN,
    WECOM_VERIFY,
)
from tests.custom_components.channels.wechat_http import (
    Served,
    encrypted_request,
    post_xml,
    serve,
    served_channels,
    signed_params,
    text_xml,
)


@pytest.fixture()
def servers() -> Iterator[list[Served]]:
    yield from served_channels()


@pytest.fixture()
def make_wecom(servers: list[Served], channel_db: str, fake_api):
    _, base = fake_api

    def make(**kw: Any) -> Served:
        options: dict[str, Any] = dict(token=WECOM_TOKEN, app_id=WECOM_CORP, secret=APP_SECRET,
                                       encoding_aes_key=WECOM_KEY, mode="safe", agent_id="218", api_base=base,
                                       reply_budget_s=2.0, state=open_state(channel_db))
        options.update(kw)
        return serve(servers, WeComInput(**options))

    return make


def test_official_verify_url_sample_over_http(make_wecom) -> None:
    wecom = make_wecom(timestamp_window_s=10**10)  # the sample is from 2014
    resp = requests.get(wecom.url, params=WECOM_VERIFY, timeout=10)
    assert (resp.status_code, resp.text) == (200, "1616140317555161061")
    tampered = dict(WECOM_VERIFY, nonce="263014781")
    assert requests.get(wecom.url, params=tampered, timeout=10).status_code == 403


def test_official_callback_sample_over_http(make_wecom) -> None:
    wecom = make_wecom(timestamp_window_s=10**10)
    resp = post_xml(wecom.url, WECOM_POST, WECOM_POST_BODY)
    assert resp.status_code == 200
    message = wecom.bot.received[0]
    assert (message.text, message.sender_id, message.input_channel) == ("hello", "mycreate", "wecom")
    wrapped = parse_xml(resp.content)
    envelope = Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, enterprise=True)
    reply = parse_xml(envelope.decrypt(wrapped["Encrypt"], wrapped["MsgSignature"], wrapped["TimeStamp"],
                                       wrapped["Nonce"]).encode())
    assert (reply["ToUserName"], reply["Content"], reply["AgentID"]) == ("mycreate", "echo: hello", "218")
    # WeCom retries with the same MsgId: processed once
    assert post_xml(wecom.url, WECOM_POST, WECOM_POST_BODY).text == "success"
    assert len(wecom.bot.received) == 1
    # ... but the sample is years old: with the default 5-minute window it is a replay
    assert post_xml(make_wecom().url, WECOM_POST, WECOM_POST_BODY).status_code == 403


def test_wrong_agent_plaintext_and_foreign_corp_are_refused(make_wecom) -> None:
    wecom = make_wecom()
    sender = f"user{uuid.uuid4().hex[:6]}"
    envelope = Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, enterprise=True)
    other_agent = encrypted_request(envelope, WECOM_TOKEN, text_xml(sender, "hi", to=WECOM_CORP, AgentID="999"))
    assert post_xml(wecom.url, *other_agent).status_code == 403
    plain = post_xml(wecom.url, signed_params(WECOM_TOKEN), text_xml(sender, "hi", to=WECOM_CORP))
    assert plain.status_code == 403
    foreign = Envelope(WECOM_TOKEN, WECOM_KEY, "ww-foreign-corp", enterprise=True)
    assert post_xml(wecom.url, *encrypted_request(foreign, WECOM_TOKEN, text_xml(sender, "hi"))).status_code == 403
    assert wecom.bot.received == []


def test_slow_answer_is_sent_with_the_app_message_api(make_wecom, fake_api) -> None:
    fake, _ = fake_api
    wecom = make_wecom(reply_budget_s=0.3)
    sender = f"user{uuid.uuid4().hex[:6]}"
    envelope = Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, enterprise=True)
    started = time.monotonic()
    resp = post_xml(wecom.url, *encrypted_request(envelope, WECOM_TOKEN,
                                                  text_xml(sender, "slow", to=WECOM_CORP, AgentID="218")))
    assert resp.text == "success" and time.monotonic() - started < 1.5
    assert wait_until(lambda: fake.texts_to(sender) == ["sorry for the wait"])
    assert fake.sent[0]["path"] == "/cgi-bin/message/send" and fake.sent[0]["agentid"] == 218
