"""A fresh database per test module for the handoff ticket store (real PostgreSQL, never mocked)."""

from __future__ import annotations

import uuid
from typing import AsyncIterator, Iterator

import pytest
from psycopg_pool import AsyncConnectionPool

from handoff.adapters.base import AdapterLinks
from handoff.tickets import TicketStore
from kefu.pgserver import ensure_database, with_database
from tests.handoff.livechat_servers import ChatwootServer, SlackServer, serve_in_thread
from tests.servers import drop_database


@pytest.fixture(scope="module")
def tickets_url(pg_admin_url: str) -> Iterator[str]:
    name = f"kefu_handoff_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    ensure_database(url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
async def store(tickets_url: str) -> AsyncIterator[TicketStore]:
    """An open, migrated store; tables are emptied first so each test starts clean."""
    ticket_store = TicketStore(tickets_url, max_size=6)
    await ticket_store.open()
    await ticket_store.migrate()
    await ticket_store._fetch("TRUNCATE handoff_messages, handoff_tickets")
    try:
        yield ticket_store
    finally:
        await ticket_store.close()


@pytest.fixture
async def links(tickets_url: str) -> AsyncIterator[AdapterLinks]:
    pool = AsyncConnectionPool(tickets_url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open()
    store = AdapterLinks(pool)
    await store.migrate()
    yield store
    await pool.close()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    server = SlackServer(token="xoxb-" + uuid.uuid4().hex)
    with serve_in_thread(server.app(), server.port):
        yield server


@pytest.fixture(scope="module")
def chatwoot() -> Iterator[ChatwootServer]:
    server = ChatwootServer(token=uuid.uuid4().hex)
    with serve_in_thread(server.app(), server.port):
        yield server
