"""Contract tests of the WeChat Customer Service (kf) connector: callback → sync_msg with the
cursor in PostgreSQL → bot → kf/send_msg, handoff through service_state, restarts, retries.
The platform side is the local contract server (fake_wechat_api.py), built from the documented
request/response fields of sync_msg, send_msg and service_state/get|trans."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator

import pytest

from custom_components.channels.wechat.common import Envelope
from custom_components.channels.wechat.kf import WeChatKfInput
from custom_components.channels.wechat.state import open_state
from custom_components.channels.wechat.state_pg import KfCursorStore
from tests.custom_components.channels.conftest import CORP_ID, KF_SECRET
from tests.custom_components.channels.test_wechat_crypto import XXE
from tests.custom_components.channels.wechat_http import (
    Served,
    encrypted_request,
    post_xml,
    serve,
    served_channels,
    signed_params,
    xml_of,
)

TOKEN, AES_KEY = "kf-callback-token", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture()
def servers() -> Iterator[list[Served]]:
    yield from served_channels()


@pytest.fixture()
def kf_env(servers: list[Served], channel_db: str, fake_api):
    fake, base = fake_api
    kfid = f"wk{uuid.uuid4().hex[:10]}"

    def make(**kw: Any) -> Served:
        channel = WeChatKfInput(token=TOKEN, app_id=CORP_ID, secret=KF_SECRET, encoding_aes_key=AES_KEY, mode="safe",
                                api_base=base, state=open_state(channel_db), cursors=KfCursorStore(channel_db), **kw)
        return serve(servers, channel)

    return fake, kfid, make


def callback(kf: Served, kfid: str, sync_token: str) -> int:
    envelope = Envelope(TOKEN, AES_KEY, CORP_ID, enterprise=True)
    inner = xml_of({"ToUserName": CORP_ID, "CreateTime": str(int(time.time())), "MsgType": "event",
                    "Event": "kf_msg_or_event", "Token": sync_token, "OpenKfId": kfid})
    resp = post_xml(kf.url, *encrypted_request(envelope, TOKEN, inner, to=CORP_ID))
    assert resp.text == "success"
    kf.run(kf.channel.drain())
    return resp.status_code


def customer(fake, kfid: str, user: str, text: str) -> dict[str, Any]:
    return fake.add_kf_message(open_kfid=kfid, external_userid=user, origin=3, msgtype="text",
                               text={"content": text})


def test_callback_pulls_messages_and_replies_with_send_msg(kf_env) -> None:
    fake, kfid, make = kf_env
    kf, user = make(), "wm-customer-1"
    fake.kf_sync_tokens.add("SYNC-1")
    customer(fake, kfid, user, "你好")
    assert callback(kf, kfid, "SYNC-1") == 200
    assert fake.texts_to(user) == ["echo: 你好"]
    assert fake.sent[0]["path"] == "/cgi-bin/kf/send_msg" and fake.sent[0]["open_kfid"] == kfid
    assert fake.sync_calls[0]["token"] == "SYNC-1" and fake.sync_calls[0]["cursor"] == ""


def test_cursor_persists_across_restarts_no_message_twice_none_skipped(kf_env) -> None:
    fake, kfid, make = kf_env
    fake.kf_sync_tokens.add("T")
    for n in range(5):  # pages of 2: three sync_msg calls with has_more
        customer(fake, kfid, f"wm-u{n}", f"m{n}")
    first = make()
    callback(first, kfid, "T")
    assert sorted(first.bot.texts()) == [f"m{n}" for n in range(5)]
    assert [c["cursor"] for c in fake.sync_calls] == ["", "c2", "c4"]
    first.stop()

    restarted = make()  # a new process: no memory, only PostgreSQL
    callback(restarted, kfid, "T")
    assert restarted.bot.texts() == [], "nothing is read twice"
    customer(fake, kfid, "wm-u9", "after restart")
    callback(restarted, kfid, "T")
    assert restarted.bot.texts() == ["after restart"], "nothing is skipped"
    assert fake.sync_calls[-1]["cursor"] == "c5"


def test_concurrent_callbacks_handle_each_message_once(kf_env) -> None:
    fake, kfid, make = kf_env
    a, b = make(), make()  # two Rasa processes behind a load balancer
    fake.kf_sync_tokens.add("T")
    for n in range(4):
        customer(fake, kfid, f"wm-c{n}", f"c{n}")
    envelope = Envelope(TOKEN, AES_KEY, CORP_ID, enterprise=True)
    inner = xml_of({"ToUserName": CORP_ID, "CreateTime": str(int(time.time())), "MsgType": "event",
                    "Event": "kf_msg_or_event", "Token": "T", "OpenKfId": kfid})
    for served in (a, b, a, b):
        assert post_xml(served.url, *encrypted_request(envelope, TOKEN, inner, to=CORP_ID)).text == "success"
    a.run(a.channel.drain())
    b.run(b.channel.drain())
    assert sorted(a.bot.texts() + b.bot.texts()) == ["c0", "c1", "c2", "c3"]
    assert sorted(t for n in range(4) for t in fake.texts_to(f"wm-c{n}")) == [f"echo: c{n}" for n in range(4)]


def test_handoff_moves_the_session_to_a_human_and_back(kf_env) -> None:
    fake, kfid, make = kf_env
    kf, user = make(servicer_userid="zhangsan"), "wm-handoff"
    fake.kf_sync_tokens.add("T")
    customer(fake, kfid, user, "human")
    callback(kf, kfid, "T")
    assert fake.trans_calls == [{"open_kfid": kfid, "external_userid": user, "service_state": 3,
                                 "servicer_userid": "zhangsan"}]
    assert fake.texts_to(user) == ["正在为您转接人工客服"]
    customer(fake, kfid, user, "are you a person?")  # the agent answers this one in WeCom
    callback(kf, kfid, "T")
    assert kf.bot.texts() == ["human"]
    fake.add_kf_message(origin=4, msgtype="event", event={"event_type": "session_status_change", "open_kfid": kfid,
                                                           "external_userid": user, "change_type": 3})
    customer(fake, kfid, user, "thanks, bye")
    callback(kf, kfid, "T")
    assert kf.bot.texts() == ["human", "thanks, bye"], "after the agent ends the session the bot answers again"


def test_handoff_without_a_servicer_goes_to_the_pool(kf_env) -> None:
    fake, kfid, make = kf_env
    kf = make()
    fake.kf_sync_tokens.add("T")
    customer(fake, kfid, "wm-pool", "human")
    callback(kf, kfid, "T")
    assert fake.trans_calls[0]["service_state"] == 2 and "servicer_userid" not in fake.trans_calls[0]


def test_enter_session_media_and_numbered_options(kf_env) -> None:
    fake, kfid, make = kf_env
    kf, user = make(), "wm-media"
    fake.kf_sync_tokens.add("T")
    fake.add_kf_message(origin=4, msgtype="event", event={"event_type": "enter_session", "open_kfid": kfid,
                                                           "external_userid": user, "welcome_code": "W"})
    fake.add_kf_message(open_kfid=kfid, external_userid=user, origin=3, msgtype="image", image={"media_id": "M"})
    customer(fake, kfid, user, "buttons")
    customer(fake, kfid, user, "1")
    callback(kf, kfid, "T")
    assert kf.bot.texts() == ["/greet", "buttons", "/check_balance"]
    texts = fake.texts_to(user)
    assert texts[0] == "echo: /greet" and "文字" in texts[1] and "1. 查余额" in texts[2]


def test_bad_sync_token_and_hostile_callbacks_do_not_crash(kf_env) -> None:
    fake, kfid, make = kf_env
    kf = make()
    customer(fake, kfid, "wm-x", "never read")
    callback(kf, kfid, "NOT-A-VALID-TOKEN")  # platform answers 95007: logged, nothing processed
    assert kf.bot.texts() == []
    assert post_xml(kf.url, signed_params(TOKEN), XXE).status_code == 400
    plain = xml_of({"ToUserName": CORP_ID, "MsgType": "event", "Event": "kf_msg_or_event", "OpenKfId": kfid})
    assert post_xml(kf.url, signed_params(TOKEN), plain).status_code == 403
    fake.kf_sync_tokens.add("T")
    callback(kf, kfid, "T")
    assert kf.bot.texts() == ["never read"], "the message is still there for the next valid sync"
