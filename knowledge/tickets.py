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
from pathlib import Path
from typing import Any

from kefu.config import Settings
from knowledge.errors import BadInput, ValidationFailed
from knowledge.review import review, suggest
from knowledge.search import language_of
from knowledge.ticket_store import Ticket, TicketStore

__all__ = ["Ticket", "TicketStore", "parse_file", "import_command", "cluster_command", "review_command"]

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_QUESTION = 1000
FIELDS = ("id", "created", "channel", "language", "question", "resolution", "category", "status")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def parse_file(path: Path) -> list[Ticket]:
    """Read a CSV (header row) or JSONL ticket export; every bad row is reported with its number."""
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
    store = TicketStore(_db_url(settings))
    try:
        report = suggest(store, settings, eps=args.eps, min_samples=args.min_samples,
                         answered_above=args.answered_above)
    finally:
        store.close()
    print(report)
    return 0


def review_command(args: argparse.Namespace, settings: Settings, cache: Any) -> int:
    store = TicketStore(_db_url(settings))
    try:
        return review(store, settings, cache, args)
    finally:
        store.close()
