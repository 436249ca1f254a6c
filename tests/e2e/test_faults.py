"""Faults lose nothing: PostgreSQL stopped for 10 s, or Redis killed, while customers chat.

No request hangs, a customer whose message could not be stored gets a clear "try again" answer
(never a 500), every message that got a 200 is in Rasa's `events` table afterwards, and the
service recovers by itself when the database is back. The stack here has its own embedded
PostgreSQL, so stopping it does not disturb the session's shared server; the Redis one (lock store,
answer cache, job broker via KEFU_REDIS_URL) a Redis of its own."""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import psycopg
import pytest
import requests

from kefu.dburl import DatabaseURL
from kefu.pgserver import with_database
from ops.jobs.broker import LocalRedis
from ops.runner import Stack
from tests.e2e.test_socketio import Client
from tests.servers import drop_database, require_model, stack_settings

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

CLIENT_TIMEOUT = 60  # a request still open after this has hung
OUTAGE = 10.0
TRY_AGAIN = ("请稍后再试", "try again")
SENDERS = 3


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(stack_settings(tmp_path_factory.mktemp("faults_var"), None), require_model())
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def say(stack: Stack, sender: str, text: str) -> requests.Response:
    url = f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/rest/webhook"
    return requests.post(url, json={"sender": sender, "message": text}, timeout=CLIENT_TIMEOUT)


def chat(stack: Stack, sender: str, texts: list[str]) -> list[tuple[str, str, requests.Response]]:
    return [(sender, text, say(stack, sender, text)) for text in texts]


def stored_user_texts(url: str, sender: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT data FROM events WHERE sender_id = %s AND type_name = 'user' ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(row[0]).get("text") for row in rows]


def answered_again(stack, sender: str, results: list) -> None:
    """The service recovers by itself: `sender` gets a 200 again within two minutes (every try is recorded)."""
    deadline, resp = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        resp = say(stack, sender, "好的谢谢")
        results.append((sender, "好的谢谢", resp))
        if resp.status_code == 200:
            break
        time.sleep(1)
    assert resp is not None and resp.status_code == 200, resp.text if resp is not None else "no request"


def test_postgres_outage_loses_no_acknowledged_message(own_stack: Stack):
    stack, postgres = own_stack, own_stack.postgres
    assert postgres is not None, "the stack runs its own embedded PostgreSQL"
    senders = [f"fault-{uuid.uuid4().hex[:6]}-{n}" for n in range(SENDERS)]
    results = [r for s in senders for r in chat(stack, s, ["你好", "我想查订单"])]
    assert all(resp.status_code == 200 for _, _, resp in results), [r.text for _, _, r in results]

    widget = Client(stack.settings.rasa_port)
    session = widget.connect()
    postgres.stop()
    stopped = time.monotonic()
    try:
        widget.sio.emit("user_uttered", {"session_id": session, "message": "在吗"})
        error = widget.errors.get(timeout=CLIENT_TIMEOUT)  # socket.io: an error event, not a reply
        assert all(phrase in error.get("text", "") for phrase in TRY_AGAIN), error
        assert widget.bot.empty(), "a reply was sent for a message that was not stored"
        with ThreadPoolExecutor(SENDERS) as pool:
            during = [r for batch in pool.map(lambda s: chat(stack, s, ["退货怎么办", "运费多少"]), senders)
                      for r in batch]
    finally:
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        url = str(DatabaseURL(postgres.start()).with_database(stack.settings.database))
        widget.sio.disconnect()
    results += during

    for sender in senders:  # recovers by itself: each customer is answered again
        answered_again(stack, sender, results)

    for sender in senders:
        stored = stored_user_texts(url, sender)
        acked = [text for s, text, resp in results if s == sender and resp.status_code == 200]
        missing = list(acked)
        for text in stored:
            if text in missing:
                missing.remove(text)
        assert not missing, f"{sender}: acknowledged but not stored: {missing} (stored {stored})"

    failed = [resp for _, _, resp in during if resp.status_code != 200]
    assert failed, "the outage was not noticed: every message got a 200 with the database down"
    for resp in failed:  # a clear answer, never a 500
        assert resp.status_code == 503, (resp.status_code, resp.text)
        assert all(phrase in resp.json()["text"] for phrase in TRY_AGAIN), resp.text


@pytest.fixture(scope="module")
def redis_stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, LocalRedis]]:
    var = tmp_path_factory.mktemp("redis_faults_var")
    redis = LocalRedis(var / "redis")
    url = redis.start()
    database = f"kefu_faults_{uuid.uuid4().hex[:8]}"
    stack = Stack(stack_settings(var, with_database(pg_admin_url, database), KEFU_REDIS_URL=url), require_model())
    before = os.environ.get("KEFU_REDIS_URL")
    os.environ["KEFU_REDIS_URL"] = url  # the children (answer cache, jobs) read it from their environment
    try:
        stack.start()
        yield stack, redis
    finally:
        if before is None:
            os.environ.pop("KEFU_REDIS_URL", None)
        else:
            os.environ["KEFU_REDIS_URL"] = before
        stack.stop()
        redis.stop()
        drop_database(pg_admin_url, database)


def test_redis_killed_mid_conversation_degrades_and_recovers(redis_stack: tuple[Stack, LocalRedis]):
    stack, redis = redis_stack
    sender = f"redis-fault-{uuid.uuid4().hex[:6]}"
    results = chat(stack, sender, ["你好", "我想查订单"])
    assert all(resp.status_code == 200 for _, _, resp in results), [r.text for _, _, r in results]

    assert redis.proc is not None
    redis.proc.kill()
    redis.proc.wait()
    during = chat(stack, sender, ["退货怎么办", "运费多少"])  # a hang fails here (CLIENT_TIMEOUT)
    for _, _, resp in during:
        assert resp.status_code in (200, 503), (resp.status_code, resp.text)
        if resp.status_code == 503:
            assert all(phrase in resp.json()["text"] for phrase in TRY_AGAIN), resp.text
    results += during

    redis = LocalRedis(redis.data_dir, port=redis.port)  # back on the same address
    redis.start()
    try:
        answered_again(stack, sender, results)
    finally:
        redis.stop()
    stored = stored_user_texts(str(stack.settings.postgres_url), sender)
    missing = [text for _, text, resp in results if resp.status_code == 200]
    for text in stored:
        if text in missing:
            missing.remove(text)
    assert not missing, f"acknowledged but not stored: {missing} (stored {stored})"
