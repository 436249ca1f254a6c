"""Personal numbers typed in a conversation stay in Rasa's tracker store only: the handoff tables,
the Slack briefing, the servers' log files and the `kefu report` exports hold the masked forms
(kefu.pii), never the raw values.

Real stack (REST channel, Rasa, action server, its console, PostgreSQL) plus a second console process
with the Slack adapter pointed at the local Slack contract server; an agent answers through it. Either
console may relay the paused customer message (they share the relay cursor); the Slack thread's relayed
messages are checked in tests/handoff/test_masking.py.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import requests

from analytics.loader import Period
from analytics.report import build_report
from kefu.config import Settings
from kefu.pii import luhn_ok
from tests.handoff import console_fixtures
from tests.handoff.livechat_servers import SlackServer, serve_in_thread

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def personal_numbers() -> tuple[str, str, str]:
    """A fresh mobile, card and resident ID (valid checksums), unique to this run."""
    rng = random.Random()
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    phone = "139" + digits(8)
    body = "6222" + digits(11)
    card = next(body + d for d in "0123456789" if luhn_ok(body + d))
    first17 = "110105" + "19880512" + digits(3)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]
    return phone, card, first17 + check


def say(settings: Settings, sender: str, text: str) -> list[str]:
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    resp = requests.post(url, json={"sender": sender, "message": text}, timeout=120)
    assert resp.status_code == 200, resp.text
    return [m.get("text", "") for m in resp.json()]


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    return condition()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    server = SlackServer(token="xoxb-" + uuid.uuid4().hex)
    with serve_in_thread(server.app(), server.port):
        yield server


def handoff_rows(settings: Settings, sender: str) -> tuple[str, list[str]]:
    """(ticket id, every column of the ticket and every message of it, as JSON text)."""
    with psycopg.connect(settings.postgres_url) as conn:
        tickets = conn.execute(
            "SELECT id, row_to_json(t)::text FROM handoff_tickets t WHERE conversation_id = %s", (sender,)
        ).fetchall()
        assert len(tickets) == 1, tickets
        ticket_id = tickets[0][0]
        messages = conn.execute(
            "SELECT row_to_json(m)::text FROM handoff_messages m WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        ).fetchall()
    return ticket_id, [tickets[0][1]] + [m[0] for m in messages]


def test_numbers_typed_in_a_handoff_conversation_are_masked_everywhere_kefu_writes(
    kefu_stack: Settings, slack: SlackServer, tmp_path: Path
):
    settings = kefu_stack
    phone, card, id_number = personal_numbers()
    card_typed = " ".join(card[i:i + 4] for i in range(0, 16, 4))
    sender = f"pii-{uuid.uuid4().hex[:8]}"
    started = time.time() - 5
    env = console_fixtures.kefu_env(
        settings.postgres_url, tmp_path, KEFU_RASA_PORT=str(settings.rasa_port), KEFU_RASA_TOKEN=settings.rasa_token,
        KEFU_HANDOFF_ADAPTER="slack", KEFU_SLACK_API_URL=slack.url, KEFU_SLACK_BOT_TOKEN=slack.token,
        KEFU_SLACK_SIGNING_SECRET=uuid.uuid4().hex, KEFU_SLACK_CHANNEL=slack.channel,
    )
    console_fixtures.add_agent(env, "pia", "senior", "")
    console = console_fixtures.start_console(env, tmp_path / "console.log")
    try:
        # before the handoff: the lost-card form asks for the phone (the transcript keeps this turn)
        say(settings, sender, "我的银行卡丢了，帮我挂失一下")
        say(settings, sender, "尾号6217")
        say(settings, sender, phone)
        say(settings, sender, "you are useless idiots")  # the senior queue, open around the clock
        ticket_id, _ = handoff_rows(settings, sender)
        # paused: the customer's next message is relayed to the ticket and the agents' Slack thread
        say(settings, sender, f"我的卡号是{card_typed}，身份证{id_number}，手机+86 {phone}")
        # relayed by whichever console polls first: the stack's own (console adapter) or this one (Slack)
        relayed = lambda: ['"role":"customer"' in m for m in handoff_rows(settings, sender)[1][1:]]  # noqa: E731
        assert wait_for(lambda: any(relayed())), "the message was not relayed to the ticket"
        assert wait_for(lambda: any(ticket_id in p["text"] for p in slack.posts)), "no Slack briefing"
        agent = console_fixtures.login(console, "pia")
        assert agent.post(f"/api/tickets/{ticket_id}/claim").status_code == 200
        reply = agent.post(f"/api/tickets/{ticket_id}/messages", {"text": f"好的，已核对手机{phone}和卡号{card}"})
        assert reply.status_code == 201, reply.text
        assert agent.post(f"/api/tickets/{ticket_id}/close", {"disposition": "resolved"}).status_code == 200
    finally:
        console.stop()

    _, rows = handoff_rows(settings, sender)
    report = build_report(settings.postgres_url, Period(started, time.time() + 5), tmp_path / "report", compare=False)
    logs = {p: p.read_text(encoding="utf-8", errors="replace") for p in (settings.var_dir / "log").glob("*.log")}
    logs[console.log] = console.log.read_text(encoding="utf-8", errors="replace")
    exports = {p: p.read_text(encoding="utf-8", errors="replace")
               for p in report.out_dir.rglob("*") if p.suffix in (".csv", ".html", ".txt")}
    written = {
        "ticket and messages": "\n".join(rows),
        "slack": json.dumps(slack.posts, ensure_ascii=False),
        **{f"log {p.name}": text for p, text in logs.items()},
        **{f"report {p.name}": text for p, text in exports.items()},
    }
    raw = [phone, card, card_typed, id_number, phone[3:], card[:12], id_number[4:14]]
    for where, text in written.items():
        leaked = [value for value in raw if value in text]
        assert not leaked, f"{where} holds raw personal numbers {leaked}"
    masked_phone, masked_card = f"{phone[:3]}****{phone[-4:]}", f"**** **** **** {card[-4:]}"
    masked_id = id_number[:4] + "*" * 10 + id_number[-4:]
    ticket, *messages = rows
    assert masked_phone in ticket, ticket
    stored = "\n".join(messages)
    assert masked_card in stored and masked_id in stored and masked_phone in stored
    assert any('"role":"customer"' in m and masked_id in m and masked_card in m for m in messages), messages
    assert any(ticket_id in p["text"] and masked_phone in p["text"] for p in slack.posts), slack.posts
