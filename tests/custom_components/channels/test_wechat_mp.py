"""Official Account connector over HTTP on a live Sanic server (mounted with Rasa's `register`),
with the shared state in a real PostgreSQL database and the platform API served by the local
contract server (fake_wechat_api.py)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Iterator

import pytest
import requests

from custom_components.channels.wechat.common import Envelope, parse_xml
from custom_components.channels.wechat.mp import WeChatMPInput
from custom_components.channels.wechat.state import open_state
from tests.custom_components.channels.bot import LONG_ANSWER, ScriptedBot
from tests.custom_components.channels.conftest import MP_APP_ID, MP_SECRET
from tests.custom_components.channels.live import wait_until
from tests.custom_components.channels.test_wechat_crypto import BILLION_LAUGHS, XXE
from tests.custom_components.channels.wechat_http import (
    Served,
    encrypted_request,
    post_xml,
    serve,
    served_channels,
    signed_params,
    text_xml,
    xml_of,
)

TOKEN = "kefu-mp-token-DO-NOT-LOG"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture()
def servers() -> Iterator[list[Served]]:
    yield from served_channels()


@pytest.fixture()
def make_mp(servers: list[Served], channel_db: str, fake_api):
    fake, base = fake_api

    def make(mode: str = "compatible", budget: float = 2.0, **kw: Any) -> Served:
        channel = WeChatMPInput(
            token=TOKEN, app_id=MP_APP_ID, secret=MP_SECRET, encoding_aes_key=AES_KEY, mode=mode, api_base=base,
            reply_budget_s=budget, state=open_state(channel_db), menu_intents={"BALANCE": "/check_balance"}, **kw,
        )
        return serve(servers, channel, ScriptedBot(slow_s=kw.pop("slow_s", 1.5)))

    return make


def user() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def reply_of(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 200, resp.text
    return parse_xml(resp.content)


def test_url_verification(make_mp) -> None:
    mp = make_mp()
    ok = requests.get(mp.url, params=dict(signed_params(TOKEN), echostr="echo-123"), timeout=10)
    assert (ok.status_code, ok.text) == (200, "echo-123")
    bad = requests.get(mp.url, params=dict(signed_params("wrong"), echostr="x"), timeout=10)
    assert bad.status_code == 403
    old = requests.get(mp.url, params=dict(signed_params(TOKEN, str(int(time.time()) - 301)), echostr="x"), timeout=10)
    assert old.status_code == 403
    assert requests.get(mp.url, params={"timestamp": str(int(time.time()))}, timeout=10).status_code == 400


def test_plaintext_message_gets_a_passive_reply(make_mp) -> None:
    mp, sender = make_mp(), user()
    reply = reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "你好")))
    assert reply["ToUserName"] == sender and reply["FromUserName"] == "gh_kefu_test"
    assert (reply["MsgType"], reply["Content"]) == ("text", "echo: 你好")
    assert mp.bot.received[0].input_channel == "wechat_mp" and mp.bot.received[0].sender_id == sender


def test_safe_mode_decrypts_and_encrypts_the_reply(make_mp) -> None:
    mp, sender = make_mp(mode="safe"), user()
    envelope = Envelope(TOKEN, AES_KEY, MP_APP_ID, enterprise=False)
    params, body = encrypted_request(envelope, TOKEN, text_xml(sender, "查余额"))
    wrapped = reply_of(post_xml(mp.url, params, body))
    inner = envelope.decrypt(wrapped["Encrypt"], wrapped["MsgSignature"], wrapped["TimeStamp"], wrapped["Nonce"])
    assert parse_xml(inner.encode())["Content"] == "echo: 查余额"
    plaintext = post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "明文"))
    assert plaintext.status_code == 403, "safe mode refuses unencrypted messages"
    assert mp.bot.texts() == ["查余额"]


def test_plaintext_mode_needs_no_key_and_checks_the_account(servers, channel_db: str) -> None:
    channel = WeChatMPInput(token=TOKEN, app_id=MP_APP_ID, mode="plaintext", state=open_state(channel_db),
                            original_id="gh_kefu_test")
    mp = serve(servers, channel)
    assert reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(user(), "hi")))["Content"] == "echo: hi"
    other = post_xml(mp.url, signed_params(TOKEN), text_xml(user(), "hi", to="gh_someone_else"))
    assert other.status_code == 403 and mp.bot.texts() == ["hi"]


def test_each_msgid_is_processed_once_across_retries(make_mp) -> None:
    mp, sender = make_mp(), user()
    body = text_xml(sender, "你好", msg_id="6054768590064713728")
    first = reply_of(post_xml(mp.url, signed_params(TOKEN), body))
    retries = [post_xml(mp.url, signed_params(TOKEN, nonce=str(n)), body) for n in range(3)]
    assert first["Content"] == "echo: 你好"
    assert [(r.status_code, r.text) for r in retries] == [(200, "success")] * 3
    assert mp.bot.texts() == ["你好"]


def test_slow_answers_go_through_the_customer_service_api(make_mp, fake_api) -> None:
    fake, _ = fake_api
    mp, sender = make_mp(budget=0.5), user()
    started = time.monotonic()
    resp = post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "slow"))
    assert (resp.status_code, resp.text) == (200, "success") and time.monotonic() - started < 1.5
    assert wait_until(lambda: fake.texts_to(sender) == ["sorry for the wait"])
    assert fake.sent[0]["path"] == "/cgi-bin/message/custom/send" and fake.token_calls == 1


def test_buttons_become_numbers_and_the_number_is_the_choice(make_mp) -> None:
    mp, sender = make_mp(), user()
    content = reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "buttons")))["Content"]
    assert "1. 查余额" in content and "2. 找人工" in content
    post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "２"))
    assert mp.bot.texts() == ["buttons", "/ask_human"]
    post_xml(mp.url, signed_params(TOKEN), text_xml(user(), "2"))  # another customer has no options
    assert mp.bot.texts()[-1] == "2"


def test_long_answers_are_split_within_the_limit(make_mp, fake_api) -> None:
    fake, _ = fake_api
    mp, sender = make_mp(), user()
    first = reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "long")))["Content"]
    assert len(first.encode()) <= 2048
    assert wait_until(lambda: len("".join([first, *fake.texts_to(sender)])) == len(LONG_ANSWER))
    assert "".join([first, *fake.texts_to(sender)]) == LONG_ANSWER
    assert all(len(t.encode()) <= 2048 for t in fake.texts_to(sender))


def event_xml(sender: str, event: str, **extra: str) -> str:
    return xml_of({"ToUserName": "gh_kefu_test", "FromUserName": sender, "CreateTime": str(int(time.time())),
                   "MsgType": "event", "Event": event, **extra})


def test_events_and_media(make_mp) -> None:
    mp, sender = make_mp(), user()
    post = lambda body: post_xml(mp.url, signed_params(TOKEN), body)  # noqa: E731
    assert reply_of(post(event_xml(sender, "subscribe")))["Content"] == "echo: /greet"
    assert reply_of(post(event_xml(sender, "CLICK", EventKey="BALANCE")))["Content"] == "echo: /check_balance"
    assert post(event_xml(sender, "CLICK", EventKey="UNKNOWN")).text == "success"
    assert post(event_xml(sender, "unsubscribe")).text == "success"
    image = text_xml(sender, "", MsgType="image", PicUrl="http://x/y.jpg", MediaId="m1")
    assert "文字" in reply_of(post(image))["Content"]
    voice = text_xml(sender, "", MsgType="voice", MediaId="m2", Format="amr", Recognition="我要查余额")
    assert reply_of(post(voice))["Content"] == "echo: 我要查余额"
    silent_voice = text_xml(sender, "", MsgType="voice", MediaId="m3", Format="amr")
    assert "text" in reply_of(post(silent_voice))["Content"]
    location = text_xml(sender, "", MsgType="location", Location_X="23.1", Location_Y="113.3", Label="广州")
    assert "文字" in reply_of(post(location))["Content"]
    assert mp.bot.texts() == ["/greet", "/check_balance", "我要查余额"]


def test_agent_messages_reach_the_customer_through_the_output_channel(make_mp, fake_api) -> None:
    fake, _ = fake_api
    mp, sender = make_mp(), user()
    out = mp.channel.get_output_channel()
    mp.run(out.send_text_message(sender, "您好，我是人工客服小王"))
    mp.run(out.send_response(sender, {"text": "请选择", "buttons": [{"title": "是", "payload": "/affirm"}]}))
    assert fake.texts_to(sender) == ["您好，我是人工客服小王", "请选择\n1. 是\n回复数字选择 / Reply with the number"]


def hostile_cases(sender: str) -> list[tuple[str, dict[str, str], bytes, str, int]]:
    good = text_xml(sender, "hi").encode()
    stale = str(int(time.time()) - 600)
    foreign = Envelope(TOKEN, AES_KEY, "wx-some-other-app", enterprise=False)
    foreign_params, foreign_body = encrypted_request(foreign, TOKEN, text_xml(sender, "hi"))
    return [
        ("json-content-type", signed_params(TOKEN), b'{"a": 1}', "application/json", 415),
        ("oversized", signed_params(TOKEN), b"<xml>" + b"x" * 100_000 + b"</xml>", "text/xml", 413),
        ("malformed", signed_params(TOKEN), b"<xml><Content>oops", "text/xml", 400),
        ("xxe", signed_params(TOKEN), XXE, "text/xml", 400),
        ("billion-laughs", signed_params(TOKEN), BILLION_LAUGHS, "text/xml", 400),
        ("empty", signed_params(TOKEN), b"", "text/xml", 400),
        ("stale-timestamp", signed_params(TOKEN, stale), good, "text/xml", 403),
        ("bad-signature", signed_params("not-the-token"), good, "text/xml", 403),
        ("no-signature", {"timestamp": str(int(time.time())), "nonce": "1"}, good, "text/xml", 400),
        ("unknown-app-id", foreign_params, foreign_body, "text/xml", 403),
    ]


def test_hostile_and_malformed_requests_are_refused_and_nothing_is_processed(make_mp) -> None:
    mp, sender = make_mp(mode="compatible"), user()
    for name, params, body, content_type, status in hostile_cases(sender):
        resp = post_xml(mp.url, params, body, content_type)
        assert resp.status_code == status, (name, resp.status_code, resp.text)
    assert mp.bot.received == []
    assert reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "still alive")))["Content"]


def test_no_secret_or_message_body_in_logs(make_mp, fake_api, caplog: pytest.LogCaptureFixture) -> None:
    fake, _ = fake_api
    caplog.set_level(logging.DEBUG)
    mp, sender = make_mp(budget=0.3), user()
    envelope = Envelope(TOKEN, AES_KEY, MP_APP_ID, enterprise=False)
    params, body = encrypted_request(envelope, TOKEN, text_xml(sender, "PRIVATE-BODY-身份证号"))
    post_xml(mp.url, params, body)
    post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "slow"))  # goes through the token + send API
    post_xml(mp.url, signed_params("wrong"), text_xml(sender, "PRIVATE-REJECTED-BODY"))
    assert wait_until(lambda: fake.texts_to(sender) == ["sorry for the wait"])
    logged = caplog.text + repr(mp.channel) + repr(mp.channel.api)
    assert "rejected a request" in caplog.text, "the rejection itself is logged"
    for secret in (TOKEN, AES_KEY, MP_SECRET, "PRIVATE-BODY", "PRIVATE-REJECTED-BODY", *fake.valid_tokens):
        assert secret not in logged


def test_a_failing_bot_answers_success_and_keeps_serving(make_mp, caplog: pytest.LogCaptureFixture) -> None:
    mp, sender = make_mp(), user()
    resp = post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "crash"))
    assert (resp.status_code, resp.text) == (200, "success"), "WeChat must not retry into the same failure"
    assert "processing a message failed: RuntimeError" in caplog.text
    assert reply_of(post_xml(mp.url, signed_params(TOKEN), text_xml(sender, "ok?")))["Content"] == "echo: ok?"


@pytest.mark.parametrize("backend", ["postgresql", "redis"])
def test_dedup_is_shared_by_two_processes(backend: str, servers, channel_db: str, fake_api,
                                          request: pytest.FixtureRequest) -> None:
    """Two channel instances (two Rasa processes) share only the state server."""
    from concurrent.futures import ThreadPoolExecutor

    _, base = fake_api
    url = channel_db if backend == "postgresql" else request.getfixturevalue("redis_url")
    pair = [serve(servers, WeChatMPInput(token=TOKEN, app_id=MP_APP_ID, mode="plaintext", api_base=base,
                                         state=open_state(url))) for _ in range(2)]
    body = text_xml(user(), "同一条消息", msg_id=str(uuid.uuid4().int)[:19])
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda i: post_xml(pair[i % 2].url, signed_params(TOKEN, nonce=str(i)), body),
                                range(6)))
    assert all(r.status_code == 200 for r in replies)
    assert sum(r.text != "success" for r in replies) == 1
    assert pair[0].bot.texts() + pair[1].bot.texts() == ["同一条消息"]


def test_a_retry_after_failed_processing_is_processed_and_a_done_one_is_not(make_mp, channel_db: str) -> None:
    """claim → process → done, or release on failure: WeChat's retry of a failed MsgId gets processed."""
    mp, sender = make_mp(), user()
    crash = text_xml(sender, "crash", msg_id=str(uuid.uuid4().int)[:19])
    assert post_xml(mp.url, signed_params(TOKEN), crash).text == "success"
    assert post_xml(mp.url, signed_params(TOKEN, nonce="2"), crash).text == "success"
    assert mp.bot.texts() == ["crash", "crash"], "the retry of a failed message is processed again"
    ok_id = str(uuid.uuid4().int)[:19]
    ok = text_xml(sender, "fine", msg_id=ok_id)
    assert reply_of(post_xml(mp.url, signed_params(TOKEN), ok))["Content"] == "echo: fine"
    assert mp.run(open_state(channel_db).get(f"msg:mp:{MP_APP_ID}:{ok_id}")) == "done"
    assert post_xml(mp.url, signed_params(TOKEN, nonce="3"), ok).text == "success"
    assert mp.bot.texts() == ["crash", "crash", "fine"]


def test_the_lease_of_a_crashed_process_expires_within_the_retry_window(make_mp, channel_db: str) -> None:
    mp, msg_id = make_mp(), str(uuid.uuid4().int)[:19]
    state, key = open_state(channel_db), f"msg:mp:{MP_APP_ID}:{msg_id}"
    body = text_xml(user(), "after a crash", msg_id=msg_id)
    assert mp.run(state.claim(key, "processing", 1))  # claimed by a process that then died
    assert post_xml(mp.url, signed_params(TOKEN), body).text == "success" and mp.bot.texts() == []
    assert wait_until(lambda: mp.run(state.get(key)) is None)
    assert reply_of(post_xml(mp.url, signed_params(TOKEN, nonce="9"), body))["Content"] == "echo: after a crash"
