"""A real PostgreSQL database per test module holding Rasa's `events` table and the handoff tables."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Iterable, Iterator

import psycopg
import pytest

from analytics.loader import EVENTS_DDL
from kefu.pgserver import ensure_database, with_database
from tests.servers import drop_database


def create_schema(url: str) -> None:
    from handoff.tickets import TicketStore

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(EVENTS_DDL)

    async def migrate() -> None:
        store = TicketStore(url)
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())


def insert_events(url: str, rows: Iterable[tuple]) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            list(rows),
        )


def insert_tickets(url: str, tickets: Iterable[dict[str, Any]]) -> None:
    cols = ["id", "conversation_id", "channel", "queue", "priority", "reason", "language", "status", "agent",
            "created_at", "claimed_at", "closed_at", "disposition", "rating"]
    times = {"created_at", "claimed_at", "closed_at"}
    values = ", ".join("to_timestamp(%s)" if c in times else "%s" for c in cols)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO handoff_tickets ({', '.join(cols)}) VALUES ({values})",
            [tuple(t[c] for c in cols) for t in tickets],
        )


@pytest.fixture(scope="module")
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    name = f"kefu_an_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    ensure_database(url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def fixture_db(fresh_db: str) -> str:
    from tests.analytics import fixture_data

    create_schema(fresh_db)
    insert_events(fresh_db, fixture_data.events())
    insert_tickets(fresh_db, fixture_data.tickets())
    return fresh_db
