"""The knowledge-update loop: import tickets, cluster what the FAQ cannot answer, review suggestions.

    kefu kb tickets import export.csv   (or .jsonl) → kb_ticket, validated row by row, one transaction
    kefu kb cluster                     unanswered tickets → DBSCAN groups → kb_suggestion (pending)
    kefu kb review                      approve (publishes a new FAQ entry/version, clears the cache),
                                        edit-and-approve, or reject each pending suggestion
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from kefu.config import Settings
from knowledge.errors import BadInput, NotFound, ValidationFailed
from knowledge.pg import PgDatabase
from knowledge.urls import StoreURL

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_QUESTION = 1000
FIELDS = ("id", "created", "channel", "language", "question", "resolution", "category", "status")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


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


def parse_file(path: Path) -> list[Ticket]:
    """Read a CSV (header row) or JSONL ticket export; every bad row is reported with its number."""
    from knowledge.search import language_of

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValidationFailed([(path.name, f"file larger than {MAX_FILE_BYTES // 2**20} MB")])
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed([(path.name, f"unreadable or not UTF-8: {exc.__class__.__name__}")]) from exc
    problems: list[tuple[str, str]] = []
    raw: list[tuple[str, Any]] = []
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    raw.append((f"{path.name} line {n}", json.loads(line)))
                except ValueError as exc:
                    problems.append((f"{path.name} line {n}", f"invalid JSON: {exc}"))
    elif path.suffix.lower() == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or "question" not in reader.fieldnames or "id" not in reader.fieldnames:
                raise ValidationFailed([(path.name, "CSV needs a header with at least `id` and `question`")])
            for n, row in enumerate(reader, 2):
                raw.append((f"{path.name} row {n}", row))
        except csv.Error as exc:
            raise ValidationFailed([(path.name, f"malformed CSV: {exc}")]) from exc
    else:
        raise ValidationFailed([(path.name, "expected a .csv or .jsonl file")])
    tickets: list[Ticket] = []
    seen: set[str] = set()
    for where, row in raw:
        if not isinstance(row, dict):
            problems.append((where, "expected an object"))
            continue
        values = {k: row.get(k) for k in FIELDS}
        if any(v is not None and not isinstance(v, str) for v in values.values()) or None in row:
            problems.append((where, "every field must be text (and CSV rows need exactly the header's columns)"))
            continue
        tid, question = (values["id"] or "").strip(), (values["question"] or "").strip()
        if not ID_RE.match(tid):
            problems.append((where, f"id must match {ID_RE.pattern}, got {tid[:40]!r}"))
        elif tid in seen:
            problems.append((where, f"duplicate id {tid!r}"))
        if not question or len(question) > MAX_QUESTION or "\x00" in question:
            problems.append((where, f"question must be 1-{MAX_QUESTION} characters without NUL"))
        if len(values["resolution"] or "") > 4000:
            problems.append((where, "resolution longer than 4000 characters"))
        if values["language"] not in (None, "", "zh", "en"):
            problems.append((where, f"language must be zh or en, got {str(values['language'])[:8]!r}"))
        if problems and problems[-1][0] == where:
            continue
        seen.add(tid)
        tickets.append(Ticket(tid, question, values["language"] or language_of(question),
                              *((values[k] or "").strip()[:4000] for k in ("resolution", "category", "channel",
                                                                             "created", "status"))))
    if problems:
        raise ValidationFailed(problems)
    return tickets


class TicketStore:
    """Tickets and suggestions next to the FAQ (tables kb_ticket, kb_suggestion)."""

    def __init__(self, url: str) -> None:
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


def _db_url(settings: Settings) -> str:
    if not settings.faq_url:
        raise BadInput("no knowledge-base database: set KEFU_POSTGRES_URL or KEFU_FAQ_URL")
    return settings.faq_url


def import_command(args: argparse.Namespace, settings: Settings) -> int:
    tickets = parse_file(args.file)
    store = TicketStore(_db_url(settings))
    try:
        print(f"tickets: {store.import_tickets(tickets)}")
    finally:
        store.close()
    return 0


def cluster_command(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.review import suggest

    store = TicketStore(_db_url(settings))
    try:
        report = suggest(store, settings, eps=args.eps, min_samples=args.min_samples,
                         answered_above=args.answered_above)
    finally:
        store.close()
    print(report)
    return 0


def review_command(args: argparse.Namespace, settings: Settings, cache: Any) -> int:
    from knowledge.review import review

    store = TicketStore(_db_url(settings))
    try:
        return review(store, settings, cache, args)
    finally:
        store.close()
