"""Handoff tickets in PostgreSQL (psycopg 3, async pool), shared by the action server and the console.

Every state change is one SQL statement or one transaction, so a crash of either process
never leaves half a ticket; a partial unique index keeps one active ticket per conversation
and `claim` is a conditional UPDATE, so exactly one of two concurrent agents wins.
"""

from __future__ import annotations

import logging
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from handoff import ticket_fields as tf
from kefu.config import load_settings
from kefu.dburl import redact
from kefu.errors import BadInput, KefuError, NotFound, StoreUnavailable
from kefu.pii import mask_text, mask_value
from kefu.routing.settings import load_routing

log = logging.getLogger(__name__)

ACTIVE = ("waiting", "assigned")

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_tickets (
    id text PRIMARY KEY,
    conversation_id text NOT NULL,
    channel text NOT NULL,
    queue text NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    reason text NOT NULL,
    reason_detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    language text NOT NULL DEFAULT 'zh',
    status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'assigned', 'closed', 'callback')),
    agent text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_at timestamptz,
    closed_at timestamptz,
    disposition text,
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    intent_ranking jsonb NOT NULL DEFAULT '[]'::jsonb,
    sentiment_trend jsonb NOT NULL DEFAULT '[]'::jsonb,
    transcript jsonb NOT NULL DEFAULT '[]'::jsonb,
    suggestions jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS handoff_tickets_one_active
    ON handoff_tickets (conversation_id) WHERE status IN ('waiting', 'assigned');
CREATE INDEX IF NOT EXISTS handoff_tickets_queue ON handoff_tickets (queue, status, priority DESC, created_at);
CREATE INDEX IF NOT EXISTS handoff_tickets_conversation ON handoff_tickets (conversation_id, closed_at DESC);
CREATE TABLE IF NOT EXISTS handoff_messages (
    id bigserial PRIMARY KEY,
    ticket_id text NOT NULL REFERENCES handoff_tickets (id) ON DELETE CASCADE,
    role text NOT NULL,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS handoff_messages_ticket ON handoff_messages (ticket_id, id);
"""


def routing_queues(routing_file: Optional[Path] = None) -> tuple[str, ...]:
    """The queues routing defines (skill groups, general, senior): elsewhere a ticket would wait unseen."""
    return tuple(sorted(load_routing(routing_file or load_settings().routing_file).groups))


class AlreadyClaimed(KefuError):
    """Another agent claimed the ticket first (or it is no longer waiting)."""


class ActiveTicketExists(BadInput):
    """The conversation already has a waiting or assigned ticket."""

    def __init__(self, reason: str, ticket_id: str) -> None:
        super().__init__(reason, status=409)
        self.ticket_id = ticket_id


class TicketClosed(BadInput):
    """The ticket is closed: it can no longer be transferred or closed again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status=409)


@dataclass
class Ticket:
    id: str
    conversation_id: str
    channel: str
    queue: str
    priority: int
    reason: str
    reason_detail: dict
    language: str
    status: str
    agent: Optional[str]
    created_at: datetime
    claimed_at: Optional[datetime]
    closed_at: Optional[datetime]
    disposition: Optional[str]
    rating: Optional[int]
    intent_ranking: list = field(default_factory=list)
    sentiment_trend: list = field(default_factory=list)
    transcript: list = field(default_factory=list)
    suggestions: list = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Ticket:
        return cls(**row)


COLUMNS = ", ".join(Ticket.__dataclass_fields__)


class TicketStore:
    """The handoff-ticket store on one PostgreSQL database (`postgresql://...` URL)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0) -> None:
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise BadInput(f"ticket store URL must start with postgresql://, got {redact(str(url))!r}")
        self.url = url
        self.timeout = timeout
        self._pool = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=timeout, kwargs={"autocommit": True}
        )

    def __repr__(self) -> str:
        return f"TicketStore({redact(self.url)!r})"

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self.timeout)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at {redact(self.url)}") from exc

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> TicketStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _fetch(self, query: str, params: tuple = (), *, many: bool = False) -> Any:
        """Run one statement in its own transaction and return the row(s) as dicts."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.cursor(row_factory=dict_row).execute(query, params)
                if cur.description is None:
                    return None
                return await (cur.fetchall() if many else cur.fetchone())
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"ticket store unavailable: {type(exc).__name__}") from exc

    async def migrate(self) -> None:
        """Create the tables and indexes if missing; safe to run from several processes at once."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('kefu.handoff.migrate'))")
                await conn.execute(SCHEMA)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"ticket store unavailable: {type(exc).__name__}") from exc

    async def create(self, **fields: Any) -> Ticket:
        """Insert a ticket and its opening system message in one transaction."""
        clean = tf.ticket_fields(fields)
        ticket_id = uuid.uuid4().hex
        values = {name: Jsonb(clean[name]) if name in tf.JSON_FIELDS else clean[name] for name in clean}
        names = ", ".join(values)
        holders = ", ".join(["%s"] * len(values))
        note = f"ticket opened: queue={clean['queue']} reason={clean['reason']} status={clean['status']}"
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.cursor(row_factory=dict_row).execute(
                    f"INSERT INTO handoff_tickets (id, {names}) VALUES (%s, {holders}) RETURNING {COLUMNS}",
                    (ticket_id, *values.values()),
                )
                row = await cur.fetchone()
                await conn.execute(
                    "INSERT INTO handoff_messages (ticket_id, role, text) VALUES (%s, 'system', %s)", (ticket_id, note)
                )
        except psycopg.errors.UniqueViolation as exc:
            active = await self.active_for_conversation(clean["conversation_id"])
            raise ActiveTicketExists(
                f"conversation already has an open ticket {active.id if active else '?'}",
                active.id if active else "",
            ) from exc
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"ticket store unavailable: {type(exc).__name__}") from exc
        except psycopg.Error as exc:  # the transaction rolled back: no ticket, the caller says "try again"
            raise StoreUnavailable(f"ticket not written: {type(exc).__name__}: {str(exc)[:200]}") from exc
        ticket = Ticket.from_row(row)
        log.info(
            "handoff ticket %s conversation=%s queue=%s reason=%s status=%s record=%s",
            ticket.id, mask_text(ticket.conversation_id), ticket.queue, ticket.reason, ticket.status,
            mask_value(ticket.reason_detail),  # some channels' ids are phone numbers
        )
        return ticket

    async def get(self, ticket_id: str) -> Ticket:
        row = await self._fetch(f"SELECT {COLUMNS} FROM handoff_tickets WHERE id = %s", (_tid(ticket_id),))
        if row is None:
            raise NotFound(f"no handoff ticket {str(ticket_id)[:40]!r}")
        return Ticket.from_row(row)

    async def active_for_conversation(self, conversation_id: str) -> Optional[Ticket]:
        row = await self._fetch(
            f"SELECT {COLUMNS} FROM handoff_tickets WHERE conversation_id = %s AND status IN ('waiting', 'assigned')",
            (tf.identifier("conversation_id", conversation_id),),
        )
        return Ticket.from_row(row) if row else None

    async def list_open(self, queues: Optional[list[str]] = None) -> list[Ticket]:
        """Waiting and assigned tickets, most urgent first (priority desc, then oldest)."""
        query = f"SELECT {COLUMNS} FROM handoff_tickets WHERE status IN ('waiting', 'assigned')"
        params: tuple = ()
        if queues is not None:
            query += " AND queue = ANY(%s)"
            params = ([tf.queue_name(q) for q in queues],)
        rows = await self._fetch(query + " ORDER BY priority DESC, created_at ASC", params, many=True)
        return [Ticket.from_row(r) for r in rows]

    async def list_callbacks(self, queues: Optional[list[str]] = None) -> list[Ticket]:
        """Callback requests taken outside business hours, oldest first."""
        query = f"SELECT {COLUMNS} FROM handoff_tickets WHERE status = 'callback'"
        params: tuple = ()
        if queues is not None:
            query += " AND queue = ANY(%s)"
            params = ([tf.queue_name(q) for q in queues],)
        rows = await self._fetch(query + " ORDER BY created_at ASC", params, many=True)
        return [Ticket.from_row(r) for r in rows]

    async def queue_position(self, ticket_id: str) -> int:
        """1-based place among the waiting tickets of its queue; 0 when it is not waiting."""
        row = await self._fetch(
            """
            SELECT t.status,
                   (SELECT count(*) FROM handoff_tickets o
                     WHERE o.queue = t.queue AND o.status = 'waiting'
                       AND (o.priority > t.priority
                            OR (o.priority = t.priority AND (o.created_at, o.id) < (t.created_at, t.id)))) AS ahead
              FROM handoff_tickets t WHERE t.id = %s
            """,
            (_tid(ticket_id),),
        )
        if row is None:
            raise NotFound(f"no handoff ticket {str(ticket_id)[:40]!r}")
        return int(row["ahead"]) + 1 if row["status"] == "waiting" else 0

    async def waiting_count(self, queue: str) -> int:
        """Waiting tickets that count toward the queue's capacity: those of conversations with history
        (handoff.opening.has_history; tickets written before that flag count too)."""
        row = await self._fetch(
            "SELECT count(*) AS n FROM handoff_tickets WHERE queue = %s AND status = 'waiting'"
            " AND coalesce(reason_detail->>'history', 'true') <> 'false'",
            (tf.queue_name(queue),),
        )
        return int(row["n"])

    async def recent_handling_seconds(self, queue: str, limit: int = 50) -> Optional[float]:
        """Median time agents spent per ticket (claimed → closed) over the queue's last `limit` tickets."""
        rows = await self._fetch(
            """
            SELECT EXTRACT(EPOCH FROM closed_at - claimed_at)::float8 AS seconds FROM handoff_tickets
             WHERE queue = %s AND status = 'closed' AND claimed_at IS NOT NULL AND closed_at IS NOT NULL
             ORDER BY closed_at DESC LIMIT %s
            """,
            (tf.queue_name(queue), tf.integer("limit", limit, 1, 1000)),
            many=True,
        )
        values = [r["seconds"] for r in rows if r["seconds"] is not None and r["seconds"] >= 0]
        return statistics.median(values) if values else None

    async def claim(self, ticket_id: str, agent: str) -> Ticket:
        """Assign a waiting ticket to `agent`; exactly one of concurrent claimers wins."""
        agent = tf.identifier("agent", agent, 128)
        row = await self._fetch(
            f"""
            UPDATE handoff_tickets SET status = 'assigned', agent = %s, claimed_at = clock_timestamp()
             WHERE id = %s AND status = 'waiting' RETURNING {COLUMNS}
            """,
            (agent, _tid(ticket_id)),
        )
        if row is not None:
            await self.add_message(ticket_id, "system", f"claimed by {agent}")
            return Ticket.from_row(row)
        current = await self.get(ticket_id)
        if current.status == "assigned" and current.agent == agent:
            return current
        raise AlreadyClaimed(f"ticket {current.id} is {current.status} (agent {current.agent or '-'})")

    async def transfer(self, ticket_id: str, queue: str, by: str) -> Ticket:
        """Put an open ticket back to waiting in another queue, noting who moved it."""
        queue, by = tf.queue_name(queue), tf.identifier("by", by, 128)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.cursor(row_factory=dict_row).execute(
                    f"""
                    UPDATE handoff_tickets SET queue = %s, status = 'waiting', agent = NULL, claimed_at = NULL
                     WHERE id = %s AND status IN ('waiting', 'assigned') RETURNING {COLUMNS}
                    """,
                    (queue, _tid(ticket_id)),
                )
                row = await cur.fetchone()
                if row is not None:
                    await conn.execute(
                        "INSERT INTO handoff_messages (ticket_id, role, text) VALUES (%s, 'system', %s)",
                        (row["id"], f"transferred to {queue} by {by}"),
                    )
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"ticket store unavailable: {type(exc).__name__}") from exc
        if row is None:
            current = await self.get(ticket_id)
            raise TicketClosed(f"ticket {current.id} is {current.status}: it cannot be transferred")
        return Ticket.from_row(row)

    async def add_message(self, ticket_id: str, role: str, text: str) -> int:
        role, text = tf.message_role(role), tf.message_text(text)
        try:
            row = await self._fetch(
                "INSERT INTO handoff_messages (ticket_id, role, text) VALUES (%s, %s, %s) RETURNING id",
                (_tid(ticket_id), role, text),
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFound(f"no handoff ticket {str(ticket_id)[:40]!r}") from exc
        return int(row["id"])

    async def messages(self, ticket_id: str, after_id: int = 0, limit: int = 500) -> list[dict]:
        rows = await self._fetch(
            """
            SELECT id, role, text, created_at FROM handoff_messages
             WHERE ticket_id = %s AND id > %s ORDER BY id LIMIT %s
            """,
            (_tid(ticket_id), tf.integer("after_id", after_id, 0, 2**62), tf.integer("limit", limit, 1, 5000)),
            many=True,
        )
        return list(rows)

    async def close_ticket(self, ticket_id: str, agent: str, disposition: str) -> Ticket:
        """Close an open or callback ticket with a disposition code."""
        agent = tf.identifier("agent", agent, 128)
        disposition = tf.identifier("disposition", disposition, 64)
        row = await self._fetch(
            f"""
            UPDATE handoff_tickets
               SET status = 'closed', closed_at = clock_timestamp(), disposition = %s, agent = COALESCE(agent, %s)
             WHERE id = %s AND status IN ('waiting', 'assigned', 'callback') RETURNING {COLUMNS}
            """,
            (disposition, agent, _tid(ticket_id)),
        )
        if row is None:
            current = await self.get(ticket_id)
            raise TicketClosed(f"ticket {current.id} is already closed")
        await self.add_message(ticket_id, "system", f"closed by {agent}: {disposition}")
        return Ticket.from_row(row)

    async def rate(self, conversation_id: str, rating: int) -> Optional[Ticket]:
        """Store a 1..5 rating on the conversation's most recently closed ticket (None if it has none)."""
        rating = tf.integer("rating", rating, 1, 5)
        row = await self._fetch(
            f"""
            UPDATE handoff_tickets SET rating = %s WHERE id = (
                SELECT id FROM handoff_tickets WHERE conversation_id = %s AND status = 'closed'
                 ORDER BY closed_at DESC LIMIT 1) RETURNING {COLUMNS}
            """,
            (rating, tf.identifier("conversation_id", conversation_id)),
        )
        return Ticket.from_row(row) if row else None


def _tid(ticket_id: Any) -> str:
    """Ticket ids are uuid4 hex; anything else cannot exist, so it is NotFound, not a SQL error."""
    if not isinstance(ticket_id, str) or len(ticket_id) != 32 or not all(c in "0123456789abcdef" for c in ticket_id):
        raise NotFound(f"no handoff ticket {str(ticket_id)[:40]!r}")
    return ticket_id
