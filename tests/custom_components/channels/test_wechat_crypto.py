"""WXBizMsgCrypt compatibility against Tencent's published sample vectors, hostile XML, and
rendering within WeChat's limits.

Vectors (copied verbatim, not generated here):
- WeCom / 企业微信 "加解密方案说明" and the WXBizMsgCrypt sample code Tencent distributes
  (Sample.cs / Sample.py / Sample.php, corp id wx5823bf96d3bd56c7, token QDG6eK,
  EncodingAESKey jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C): VerifyURL
  (msg_signature 5c45ff5e…, timestamp 1409659589, nonce 263014780) and DecryptMsg
  (msg_signature 477715d1…, timestamp 1409659813, nonce 1372623149). The echostr plaintext
  1616140317555161061 and the decrypted message are what that sample prints.
- WeChat Official Account "消息加解密接入指引" WXBizMsgCrypt Python demo (token spamtest,
  app id wx2c2769f8efd9abc2, EncodingAESKey abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG,
  timestamp 1409735669, nonce 1320562132, msg_sign 5d197aaf…).
Both are reproduced in many public repositories (e.g. WXBizMsgCrypt ports); they were
checked here against wechatpy 1.8.18 and against an independent AES implementation below.
"""

from __future__ import annotations

import base64
import socket
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.channels.wechat.common import (
    Envelope,
    check_timestamp,
    parse_xml,
    render_messages,
    resolve_option,
    sha1_signature,
    split_text,
)
from kefu.errors import BadInput, ConfigError

WECOM_TOKEN, WECOM_KEY, WECOM_CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
WECOM_VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
WECOM_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gs"
    "ijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)
WECOM_POST = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
              "nonce": "1372623149"}
WECOM_POST_BODY = (
    f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><Encrypt><![CDATA[{WECOM_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)

MP_TOKEN, MP_KEY, MP_APP = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
MP_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXp"
    "bUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlp"
    "Kn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD"
    "1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
MP_POST = {"msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa", "timestamp": "1409735669",
           "nonce": "1320562132"}


def reference_decrypt(encoding_aes_key: str, ciphertext_b64: str) -> tuple[bytes, bytes]:
    """WXBizMsgCrypt written from the published algorithm with `cryptography` only:
    AES-256-CBC, key = b64(EncodingAESKey + "="), IV = key[:16], PKCS#7 to 32 bytes,
    plaintext = random(16) + big-endian length(4) + message + receive id."""
    key = base64.b64decode(encoding_aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(ciphertext_b64)) + decryptor.finalize()
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad, "PKCS#7 padding to a 32-byte block"
    body = plain[16:-pad]
    (length,) = struct.unpack(">I", body[:4])
    return body[4 : 4 + length], body[4 + length :]


def test_wecom_official_verify_url_vector() -> None:
    envelope = Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, enterprise=True)
    v = WECOM_VERIFY
    assert envelope.decrypt(v["echostr"], v["msg_signature"], v["timestamp"], v["nonce"]) == "1616140317555161061"
    assert sha1_signature(WECOM_TOKEN, v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]


def test_wecom_official_decrypt_vector() -> None:
    envelope = Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, enterprise=True)
    outer = parse_xml(WECOM_POST_BODY.encode())
    p = WECOM_POST
    msg = parse_xml(envelope.decrypt(outer["Encrypt"], p["msg_signature"], p["timestamp"], p["nonce"]).encode())
    assert msg == {
        "ToUserName": WECOM_CORP, "FromUserName": "mycreate", "CreateTime": "1409659813", "MsgType": "text",
        "Content": "hello", "MsgId": "4561255354251345929", "AgentID": "218",
    }
    message, receive_id = reference_decrypt(WECOM_KEY, WECOM_ENCRYPT)
    assert receive_id == WECOM_CORP.encode() and b"<Content><![CDATA[hello]]></Content>" in message


def test_official_account_official_decrypt_vector() -> None:
    envelope = Envelope(MP_TOKEN, MP_KEY, MP_APP, enterprise=False)
    p = MP_POST
    msg = parse_xml(envelope.decrypt(MP_ENCRYPT, p["msg_signature"], p["timestamp"], p["nonce"]).encode())
    assert (msg["FromUserName"], msg["Content"], msg["MsgId"]) == ("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "abcdteT",
                                                                   "6054768590064713728")
    assert reference_decrypt(MP_KEY, MP_ENCRYPT)[1] == MP_APP.encode()


def test_wrong_signature_or_foreign_app_id_is_refused() -> None:
    p = WECOM_POST
    with pytest.raises(BadInput) as bad_sig:
        Envelope(WECOM_TOKEN, WECOM_KEY, WECOM_CORP, True).decrypt(WECOM_ENCRYPT, "0" * 40, p["timestamp"], p["nonce"])
    assert bad_sig.value.status == 403
    with pytest.raises(BadInput) as foreign:  # right key and signature, but another corp id
        Envelope(WECOM_TOKEN, WECOM_KEY, "ww-another-corp", True).decrypt(
            WECOM_ENCRYPT, p["msg_signature"], p["timestamp"], p["nonce"]
        )
    assert foreign.value.status == 403
    with pytest.raises(ConfigError):
        Envelope(WECOM_TOKEN, "too-short", WECOM_CORP, True)


@pytest.mark.parametrize("enterprise", [False, True])
def test_round_trip_matches_the_published_layout(enterprise: bool) -> None:
    envelope = Envelope(MP_TOKEN, MP_KEY, MP_APP, enterprise)
    xml = "<xml><Content><![CDATA[你好, world]]></Content></xml>"
    wrapped = parse_xml(envelope.encrypt(xml, "12345", "1700000000").encode())
    assert wrapped["MsgSignature"] == sha1_signature(MP_TOKEN, "1700000000", "12345", wrapped["Encrypt"])
    message, receive_id = reference_decrypt(MP_KEY, wrapped["Encrypt"])
    assert message == xml.encode("utf-8") and receive_id == MP_APP.encode()
    assert len(base64.b64decode(wrapped["Encrypt"])) % 32 == 0
    assert envelope.decrypt(wrapped["Encrypt"], wrapped["MsgSignature"], "1700000000", "12345") == xml
    # the same plaintext twice gives different ciphertexts (random 16-byte prefix)
    assert parse_xml(envelope.encrypt(xml, "12345", "1700000000").encode())["Encrypt"] != wrapped["Encrypt"]
    assert socket.ntohl(socket.htonl(len(xml.encode()))) == len(xml.encode())


def test_corrupted_ciphertexts_are_refused_not_crashing() -> None:
    envelope = Envelope(MP_TOKEN, MP_KEY, MP_APP, False)
    for bad in ("not base64 !!!", "QUJD", base64.b64encode(b"x" * 33).decode(), MP_ENCRYPT[:-8] + "AAAAAAA="):
        sig = sha1_signature(MP_TOKEN, "1", "2", bad)
        with pytest.raises(BadInput) as info:
            envelope.decrypt(bad, sig, "1", "2")
        assert info.value.status == 403


XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><Content>&xxe;</Content></xml>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Content>&lol3;</Content></xml>"""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (XXE, 400),
        (BILLION_LAUGHS, 400),
        (b"<!DOCTYPE xml><xml><a>1</a></xml>", 400),
        (b"<xml><Content>unclosed", 400),
        (b"\xff\xfe not xml", 400),
        (b"", 400),
        (b"   ", 400),
        (b"<html><body>1</body></html>", 400),
        (b"<xml><Content>" + b"a" * 70000 + b"</Content></xml>", 413),
    ],
    ids=["xxe", "billion-laughs", "dtd", "unclosed", "binary", "empty", "blank", "not-wechat-root", "oversized"],
)
def test_hostile_and_malformed_xml_is_refused(body: bytes, status: int) -> None:
    with pytest.raises(BadInput) as info:
        parse_xml(body)
    assert info.value.status == status


def test_timestamps_outside_the_window_are_refused() -> None:
    assert check_timestamp("1700000000", now=1700000100) == "1700000000"
    for bad in ("1700000000", "", None, "abc", "-5", "9" * 20):
        with pytest.raises(BadInput):
            check_timestamp(bad, now=1700000000 + 301)


def test_split_text_respects_the_byte_limit_and_keeps_every_character() -> None:
    text = ("第一段的内容。" * 200) + "\n" + ("Second paragraph, in English. " * 100)
    chunks = split_text(text, 2048)
    assert all(len(c.encode("utf-8")) <= 2048 for c in chunks) and len(chunks) >= 3
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert split_text("短", 2048) == ["短"] and split_text("  ", 2048) == []
    assert all(len(c.encode()) <= 5 for c in split_text("一二三四五六", 5))  # never inside a character


def test_buttons_become_numbered_options_and_numbers_resolve() -> None:
    texts, options = render_messages(
        [{"text": "请选择：", "buttons": [{"title": "查余额", "payload": "/check_balance"},
                                      {"title": "Agent", "payload": "/ask_human"}]}]
    )
    assert texts[0].startswith("请选择：\n1. 查余额\n2. Agent") and options == ["/check_balance", "/ask_human"]
    assert resolve_option("2", options) == "/ask_human"
    assert resolve_option("１", options) == "/check_balance"  # full-width digit from a Chinese keyboard
    assert resolve_option(" 2。", options) == "/ask_human"
    for other in ("3", "0", "two", "12345", "", "-1"):
        assert resolve_option(other, options) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000), st.integers(min_value=4, max_value=2048))
def test_split_text_property(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(0 < len(c.encode("utf-8")) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split()), "only whitespace at cuts may go"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_xml_never_raises_anything_but_bad_input(raw: bytes) -> None:
    try:
        assert isinstance(parse_xml(raw), dict)
    except BadInput as exc:
        assert exc.status in (400, 413)
