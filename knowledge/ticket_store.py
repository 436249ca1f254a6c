"""Imported tickets and the FAQ suggestions clustered from them (tables kb_ticket, kb_suggestion).

The storage both halves of the knowledge-update loop share: `knowledge.tickets` imports into it,
`knowledge.review` clusters from it and records the reviewers' decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

from kefu.dburl import DatabaseURL
from knowledge.errors import NotFound
from knowledge.pg import PgDatabase
from knowledge.urls import StoreURL


@dataclass(frozen=True)
class Ticket:
    id: str
    question: str
    language: str
    resolution: str = ""
    category: str = ""
    channel: str = ""
    created: str = ""
    status: str = ""


class TicketStore:
    """Tickets and suggestions next to the FAQ (tables kb_ticket, kb_suggestion)."""

    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        self.db = PgDatabase(StoreURL.parse(url))

    def ensure_schema(self) -> None:
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(7305003)")
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_ticket (id TEXT PRIMARY KEY, question TEXT NOT NULL,
                   language TEXT NOT NULL, resolution TEXT NOT NULL DEFAULT '', category TEXT NOT NULL DEFAULT '',
                   channel TEXT NOT NULL DEFAULT '', created TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
                   imported_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_suggestion (id SERIAL PRIMARY KEY, language TEXT NOT NULL,
                   question TEXT NOT NULL, alternatives TEXT[] NOT NULL, answer TEXT NOT NULL,
                   answer_source TEXT NOT NULL,
                   ticket_ids TEXT[] NOT NULL, size INTEGER NOT NULL, cohesion REAL NOT NULL,
                   status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
                   faq_id TEXT, params JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                   reviewed_at TIMESTAMPTZ)"""
            )

    def import_tickets(self, tickets: list[Ticket]) -> dict[str, int]:
        self.ensure_schema()
        with self.db.transaction() as conn:
            before = conn.execute("SELECT count(*) FROM kb_ticket").fetchone()[0]
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO kb_ticket (id, question, language, resolution, category, channel, created, status)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET
                       question = EXCLUDED.question, language = EXCLUDED.language, resolution = EXCLUDED.resolution,
                       category = EXCLUDED.category, channel = EXCLUDED.channel, created = EXCLUDED.created,
                       status = EXCLUDED.status""",
                    [(t.id, t.question, t.language, t.resolution, t.category, t.channel, t.created, t.status)
                     for t in tickets],
                )
            after = conn.execute("SELECT count(*) FROM kb_ticket").fetchone()[0]
        return {"rows": len(tickets), "new": after - before, "updated": len(tickets) - (after - before)}

    def tickets(self) -> list[Ticket]:
        self.ensure_schema()
        with self.db.connection() as conn:
            rows = conn.execute("SELECT id, question, language, resolution, category, channel, created, status "
                                "FROM kb_ticket ORDER BY id").fetchall()
        return [Ticket(*r) for r in rows]

    def replace_pending(self, suggestions: list[dict[str, Any]]) -> list[int]:
        """Swap the pending suggestions for a fresh clustering run (reviewed ones are kept)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM kb_suggestion WHERE status = 'pending'")
            ids = []
            for s in suggestions:
                row = conn.execute(
                    """INSERT INTO kb_suggestion (language, question, alternatives, answer, answer_source, ticket_ids,
                       size, cohesion, params) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                    (s["language"], s["question"], s["alternatives"], s["answer"], s["answer_source"],
                     s["ticket_ids"], s["size"], s["cohesion"], json.dumps(s["params"])),
                ).fetchone()
                ids.append(row[0])
        return ids

    def suggestions(self, status: Optional[str] = "pending") -> list[dict[str, Any]]:
        self.ensure_schema()
        keys = ("id", "language", "question", "alternatives", "answer", "answer_source", "ticket_ids", "size",
                "cohesion", "status", "faq_id")
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(keys)} FROM kb_suggestion WHERE (%s::text IS NULL OR status = %s) ORDER BY id",
                (status, status),
            ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def mark(self, suggestion_id: int, status: str, faq_id: Optional[str] = None) -> None:
        with self.db.connection() as conn:
            cur = conn.execute(
                "UPDATE kb_suggestion SET status = %s, faq_id = %s, reviewed_at = now() WHERE id = %s "
                "AND status = 'pending'", (status, faq_id, suggestion_id))
            if cur.rowcount != 1:
                raise NotFound(f"no pending suggestion #{suggestion_id}")

    def close(self) -> None:
        self.db.close()
