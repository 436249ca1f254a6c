"""Conversations over the real REST channel: Rasa + action server + PostgreSQL tracker store."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
import requests

from kefu.config import Settings

pytestmark = pytest.mark.servers
HAN = re.compile(r"[\u4e00-\u9fff]")


def say(settings: Settings, sender: str, text: str) -> list[str]:
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    resp = requests.post(url, json={"sender": sender, "message": text}, timeout=60)
    assert resp.status_code == 200, resp.text
    return [m.get("text", "") for m in resp.json()]


def test_chinese_conversation_reports_a_lost_card(kefu_stack):
    sender = f"zh-{uuid.uuid4().hex[:8]}"
    greeting = say(kefu_stack, sender, "你好")
    assert greeting and HAN.search(greeting[0])
    ask_card = say(kefu_stack, sender, "我的银行卡丢了，帮我挂失一下")
    assert any("后四位" in t for t in ask_card), ask_card
    ask_phone = say(kefu_stack, sender, "尾号6217")
    assert any("手机" in t for t in ask_phone), ask_phone
    done = say(kefu_stack, sender, "13812345678")
    assert any("6217" in t and "138****5678" in t and "LC" in t for t in done), done


def test_english_conversation_looks_up_an_order_and_answers_a_faq(kefu_stack):
    sender = f"en-{uuid.uuid4().hex[:8]}"
    greeting = say(kefu_stack, sender, "hi there")
    assert greeting and not HAN.search(greeting[0])
    ask_phone = say(kefu_stack, sender, "where is my order DD2411050123?")
    assert any("phone number" in t for t in ask_phone) and not any("SF Express" in t for t in ask_phone), ask_phone
    status = say(kefu_stack, sender, "13812345678")  # the number the order was placed with (data/orders)
    assert any("SF Express" in t and "DD2411050123" in t for t in status), status
    say(kefu_stack, sender, "where is my order DD2411050123?")
    other = say(kefu_stack, sender, "13900000000")  # someone else's number: the same answer as an unknown id
    assert any("couldn't find order DD2411050123" in t for t in other), other
    assert not any("SF Express" in t or "air fryer" in t for t in other), other
    assert not any(HAN.search(t) for t in status)


def test_the_conversation_is_stored_in_postgresql(kefu_stack):
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    say(kefu_stack, sender, "你好")
    with psycopg.connect(kefu_stack.postgres_url) as conn:
        rows = conn.execute(
            "SELECT type_name FROM events WHERE sender_id = %s ORDER BY id", (sender,)
        ).fetchall()
    kinds = [r[0] for r in rows]
    assert "user" in kinds and "bot" in kinds
