"""The relay's durable outbox: customer messages on their way to the live-chat tool.

A customer message is stored in the ticket, then written here as `pending` in the same
transaction that moves the relay cursor, so it survives a restart and a tool that is down.
`drain` sends pending messages ticket by ticket in id order (message 2 never before 1: the
first failure stops that ticket's queue), marks each `sent`, and on failure backs off
exponentially (base × 2^attempts, capped) before trying the same message again.

Guarantee: at least once, in order per ticket. Neither Slack's `chat.postMessage` nor
Chatwoot's message API takes an idempotency key, so a crash between the tool's answer and
the `sent` mark repeats that one message. Sent rows are deleted after a week.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Awaitable, Callable

from psycopg_pool import AsyncConnectionPool

from kefu.errors import KefuError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_relay_outbox (
    id bigserial PRIMARY KEY,
    adapter text NOT NULL,
    ticket_id text NOT NULL,
    text text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS handoff_relay_outbox_pending ON handoff_relay_outbox (adapter, ticket_id, id)
    WHERE status = 'pending';
"""
BATCH = 200

Send = Callable[[str, str], Awaitable[None]]  # (ticket id, text) → shown in the tool, or KefuError


class Outbox:
    """Pending → sent, retried with exponential backoff, in order per ticket."""

    def __init__(self, pool: AsyncConnectionPool, adapter: str, backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0) -> None:
        self.pool = pool
        self.adapter = adapter
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    async def migrate(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def enqueue(self, conn: Any, ticket_id: str, text: str) -> None:
        """Add a message on the caller's connection (inside its transaction)."""
        await conn.execute("INSERT INTO handoff_relay_outbox (adapter, ticket_id, text) VALUES (%s, %s, %s)",
                           (self.adapter, ticket_id, text))

    async def _due_tickets(self) -> list[str]:
        """Tickets whose oldest pending message is due (a later one never jumps the queue)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT ticket_id FROM handoff_relay_outbox o WHERE adapter = %s AND status = 'pending' "
                "AND next_attempt_at <= now() AND NOT EXISTS (SELECT 1 FROM handoff_relay_outbox e "
                "WHERE e.adapter = o.adapter AND e.ticket_id = o.ticket_id AND e.status = 'pending' AND e.id < o.id) "
                "ORDER BY id LIMIT %s", (self.adapter, BATCH))
            return [row[0] for row in await cur.fetchall()]

    async def drain(self, send: Send) -> int:
        """Send every due message; returns how many were sent."""
        sent = 0
        for ticket_id in await self._due_tickets():
            sent += await self._drain_ticket(ticket_id, send)
        if sent and random.random() < 0.01:  # keep the table small without a scheduler
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM handoff_relay_outbox WHERE status = 'sent' "
                                   "AND sent_at < now() - interval '7 days'")
        return sent

    async def _drain_ticket(self, ticket_id: str, send: Send) -> int:
        """One ticket's queue under an advisory lock (two consoles never send the same message);
        each `sent` mark commits at once (autocommit), so a crash repeats at most one message."""
        lock = (f"outbox:{self.adapter}:{ticket_id}",)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 11))", lock)
            if not (await cur.fetchone())[0]:
                return 0
            try:
                return await self._send_queue(conn, ticket_id, send)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 11))", lock)

    async def _send_queue(self, conn: Any, ticket_id: str, send: Send) -> int:
        cur = await conn.execute(
            "SELECT id, text, attempts FROM handoff_relay_outbox WHERE adapter = %s AND ticket_id = %s "
            "AND status = 'pending' ORDER BY id LIMIT %s", (self.adapter, ticket_id, BATCH))
        sent = 0
        for row_id, text, attempts in await cur.fetchall():
            try:
                await send(ticket_id, text)
            except KefuError as exc:
                await self._later(conn, row_id, attempts, exc)
                break
            await conn.execute("UPDATE handoff_relay_outbox SET status = 'sent', sent_at = now(), "
                               "attempts = attempts + 1 WHERE id = %s", (row_id,))
            sent += 1
        return sent

    async def _later(self, conn: Any, row_id: int, attempts: int, exc: Exception) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** min(attempts, 20))
        log.warning("relay outbox: %s could not show message %s (attempt %s), retrying in %.0f s: %s",
                    self.adapter, row_id, attempts + 1, delay, exc)
        await conn.execute(
            "UPDATE handoff_relay_outbox SET attempts = attempts + 1, last_error = %s, "
            "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s", (str(exc)[:500], delay, row_id))
