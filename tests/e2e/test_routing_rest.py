"""Smart routing and handoff tickets through the real stack (REST channel, Rasa, action server,
PostgreSQL): a request for a person writes a ticket and pauses the bot; anger goes to the
senior queue; after the agent closes the ticket the bot asks for a rating and stores it.

Uses the session stack (models/kefu.tar.gz); KEFU_E2E_MODEL=<path> starts a stack of its own
with another model (e.g. one trained into /tmp before `make model` picked up the routing policy).
"""

from __future__ import annotations

import asyncio
import os
import tarfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import requests

from handoff.tickets import Ticket, TicketStore
from kefu.config import Settings
from kefu.pgserver import with_database
from ops.runner import Stack
from tests.servers import drop_database, require_model, stack_settings

pytestmark = pytest.mark.servers


def has_routing_policy(model: Path) -> bool:
    with tarfile.open(model) as tar:
        member = next((m for m in tar.getmembers() if m.name.lstrip("/") == "metadata.json"), None)
        return member is not None and b"RoutingPolicy" in tar.extractfile(member).read()


@pytest.fixture(scope="module")
def stack(request, pg_admin_url: str, tmp_path_factory) -> Iterator[Settings]:
    own_model = os.environ.get("KEFU_E2E_MODEL")
    model = Path(own_model) if own_model else require_model()
    if not has_routing_policy(model):
        pytest.skip(f"{model} was trained before RoutingPolicy joined rasa_project/config.yml: run `make model`")
    if not own_model:
        yield request.getfixturevalue("kefu_stack")
        return
    database = f"kefu_routing_{uuid.uuid4().hex[:8]}"
    settings = stack_settings(tmp_path_factory.mktemp("var"), with_database(pg_admin_url, database))
    running = Stack(settings, model)
    try:
        running.start()
        yield settings
    finally:
        running.stop()
        drop_database(pg_admin_url, database)


def say(settings: Settings, sender: str, text: str) -> list[str]:
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    resp = requests.post(url, json={"sender": sender, "message": text}, timeout=120)
    assert resp.status_code == 200, resp.text
    return [m.get("text", "") for m in resp.json()]


def rasa_api(settings: Settings, path: str, body: object) -> requests.Response:
    url = f"http://127.0.0.1:{settings.rasa_port}/conversations/{path}"
    return requests.post(url, params={"token": settings.rasa_token}, json=body, timeout=120)


def tickets_of(settings: Settings, sender: str) -> list[tuple]:
    with psycopg.connect(settings.postgres_url) as conn:
        return conn.execute(
            "SELECT id, queue, reason, status, priority, reason_detail FROM handoff_tickets"
            " WHERE conversation_id = %s ORDER BY created_at", (sender,)
        ).fetchall()


def test_asking_for_a_person_writes_a_ticket_pauses_and_gives_the_position(stack):
    sender = f"h-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    reply = say(stack, sender, "转人工")
    elapsed = time.monotonic() - started
    ((ticket_id, queue, reason, status, priority, detail),) = tickets_of(stack, sender)
    if status == "callback":  # outside the general queue's hours (08:00-22:00 Shanghai)
        assert any("回电" in t for t in reply), reply
        return
    assert (queue, reason, status, priority) == ("general", "explicit_request", "waiting", 60)
    # the trained model's thresholds (chosen for data/routing.yml's precision targets) are recorded
    thresholds = detail["thresholds"]
    assert thresholds["source"].startswith("model") and 0 < thresholds["specialist"] <= thresholds["auto"] <= 1
    assert detail["intent"] == "ask_human" and detail["out_of_scope"]["flagged"] is False
    # other tests of the session may already wait in the general queue: the position the customer
    # hears is the number of waiting general tickets up to and including this one
    with psycopg.connect(stack.postgres_url) as conn:
        (ahead,) = conn.execute(
            "SELECT count(*) FROM handoff_tickets WHERE queue = 'general' AND status = 'waiting'"
            " AND created_at <= (SELECT created_at FROM handoff_tickets WHERE id = %s)", (ticket_id,)
        ).fetchone()
    assert any(f"排在第{ahead}位" in t and "分钟" in t for t in reply), (ahead, reply)
    # paused: the bot stays silent, the message is kept for the agent
    assert say(stack, sender, "我的卡被吞了") == []
    with psycopg.connect(stack.postgres_url) as conn:
        texts = [r[0] for r in conn.execute(
            "SELECT data::json->>'text' FROM events WHERE sender_id = %s AND type_name = 'user'", (sender,))]
    assert "我的卡被吞了" in texts
    print(f"handoff round trip (REST, ticket written): {elapsed:.2f} s")


def test_an_angry_customer_goes_to_the_senior_queue(stack):
    sender = f"a-{uuid.uuid4().hex[:8]}"
    reply = say(stack, sender, "you are useless idiots")
    ((_, queue, reason, status, priority, detail),) = tickets_of(stack, sender)
    assert (queue, reason, status, priority) == ("senior", "angry", "waiting", 90)
    assert any("senior agent" in t for t in reply), reply
    assert detail["sentiment"]["label"] == "negative"


def test_after_the_agent_closes_the_bot_asks_for_a_rating_and_stores_it(stack):
    sender = f"r-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "let me talk to a real person")
    ((ticket_id, _queue, _reason, status, _priority, _detail),) = tickets_of(stack, sender)

    async def close() -> Ticket:
        async with TicketStore(stack.postgres_url) as store:
            if status == "waiting":
                await store.claim(ticket_id, "alice")
            return await store.close_ticket(ticket_id, "alice", "resolved")

    asyncio.run(close())
    assert rasa_api(stack, f"{sender}/tracker/events", [{"event": "resume"}]).status_code == 200
    resp = rasa_api(stack, f"{sender}/trigger_intent", {"name": "EXTERNAL_handoff_closed"})
    assert resp.status_code == 200, resp.text
    assert any("1 to 5" in (m.get("text") or "") for m in resp.json().get("messages", [])), resp.text
    thanks = say(stack, sender, "5")
    assert any("Thank you for your rating" in t for t in thanks), thanks

    async def rating() -> int:
        async with TicketStore(stack.postgres_url) as store:
            return (await store.get(ticket_id)).rating

    assert asyncio.run(rating()) == 5
    # the bot is back: an ordinary question is answered again
    assert say(stack, sender, "I forgot my online banking password, how do I reset it") != []


def test_the_console_way_execute_utter_ask_rating_then_a_chinese_rating(stack):
    """The agent console (handoff/rasa_api.py) resumes and executes utter_ask_rating directly."""
    sender = f"x-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "我要找人工客服")
    ((ticket_id, _queue, _reason, status, _priority, _detail),) = tickets_of(stack, sender)

    async def close() -> None:
        async with TicketStore(stack.postgres_url) as store:
            if status == "waiting":
                await store.claim(ticket_id, "bob")
            await store.close_ticket(ticket_id, "bob", "resolved")

    asyncio.run(close())
    assert rasa_api(stack, f"{sender}/tracker/events", [{"event": "resume"}]).status_code == 200
    resp = rasa_api(stack, f"{sender}/execute", {"name": "utter_ask_rating"})
    assert resp.status_code == 200, resp.text
    assert any("1-5分" in (m.get("text") or "") for m in resp.json().get("messages", [])), resp.text
    assert any("很抱歉" in t for t in say(stack, sender, "两星"))

    async def rating() -> int:
        async with TicketStore(stack.postgres_url) as store:
            return (await store.get(ticket_id)).rating

    assert asyncio.run(rating()) == 2
