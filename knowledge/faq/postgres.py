"""FAQ store on PostgreSQL: entries with version history, searched by full-text + trigram + vector."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Optional

from knowledge.calibrator import DEFAULT_CALIBRATION, RAW_THRESHOLD, AnswerCalibrator, decide, load_calibrator
from knowledge.embed import Embedder
from knowledge.errors import NotFound
from knowledge.faq import FaqEntry, SearchResult
from knowledge.pg import PhraseStore, get_meta
from knowledge.search import SIGNALS, confidence, prepare_query
from knowledge.urls import StoreURL

log = logging.getLogger(__name__)
COLUMNS = "id, language, question, alternatives, answer, category, tags, status, version, updated_at"


def _entry(row: Any) -> FaqEntry:
    return FaqEntry(
        id=row[0], language=row[1], question=row[2], alternatives=tuple(row[3] or ()), answer=row[4],
        category=row[5], tags=tuple(row[6] or ()), status=row[7], version=row[8],
        updated_at=row[9].isoformat() if row[9] else None,
    )


class PostgresFaqStore(PhraseStore):
    """`postgresql://user:pw@host/db` — tables kb_faq, kb_faq_history, kb_faq_phrase, kb_meta."""

    owner_table = "kb_faq"
    phrase_table = "kb_faq_phrase"
    ref_column = "faq_id"
    columns = COLUMNS
    schema_lock = 7305001

    def __init__(self, url: StoreURL, embedder: Optional[Embedder] = None, timeout: float = 3.0,
                 calibrator: AnswerCalibrator | Path | str | None = DEFAULT_CALIBRATION) -> None:
        """`calibrator`: an AnswerCalibrator, None for the raw threshold, or the path of a JSON
        calibrator read on the first search (a bad file: one warning, then the raw threshold)."""
        super().__init__(url, embedder, timeout)
        self._calibrator = calibrator
        self._calibrator_lock = threading.Lock()

    @property
    def calibrator(self) -> Optional[AnswerCalibrator]:
        with self._calibrator_lock:
            if isinstance(self._calibrator, str | Path):
                self._calibrator = load_calibrator(self._calibrator)
            return self._calibrator

    def ensure_schema(self) -> None:
        with self.schema() as conn:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_faq (
                    id TEXT PRIMARY KEY, language TEXT NOT NULL CHECK (language IN ('zh', 'en')),
                    question TEXT NOT NULL, alternatives TEXT[] NOT NULL DEFAULT '{}', answer TEXT NOT NULL,
                    category TEXT NOT NULL DEFAULT '', tags TEXT[] NOT NULL DEFAULT '{}',
                    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
                    version INTEGER NOT NULL DEFAULT 1, content_hash TEXT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_faq_history (
                    faq_id TEXT NOT NULL REFERENCES kb_faq(id) ON DELETE CASCADE, version INTEGER NOT NULL,
                    question TEXT NOT NULL, alternatives TEXT[] NOT NULL, answer TEXT NOT NULL,
                    category TEXT NOT NULL, tags TEXT[] NOT NULL, status TEXT NOT NULL, note TEXT NOT NULL,
                    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (faq_id, version))"""
            )

    def upsert(self, entries: list[FaqEntry], note: str = "load", progress: bool = False) -> dict[str, int]:
        """Insert new and changed entries (new version + history row) in ONE transaction.

        Unchanged entries (same content hash) are skipped, so loading twice is a no-op. Embeddings
        are computed before the transaction opens; a failure anywhere rolls everything back.
        """
        self.ensure_schema()
        with self.db.connection() as conn:
            known = dict(conn.execute("SELECT id, content_hash FROM kb_faq").fetchall())
            stored_encoder = get_meta(conn, "faq_encoder")
        reembed = stored_encoder != self.embedder.fingerprint
        changed = [e for e in entries if known.get(e.id) != e.content_hash()]
        todo = {e.id: e for e in changed}
        if reembed and known:
            with self.db.connection() as conn:
                for row in conn.execute(f"SELECT {COLUMNS} FROM kb_faq").fetchall():
                    todo.setdefault(row[0], _entry(row))
        phrases = [(e, p) for e in todo.values() for p in e.phrases]
        vectors = self.embed_all([p for _, p in phrases], progress, "faq embeddings")
        by_id: dict[str, list[int]] = {}
        for i, (e, _) in enumerate(phrases):
            by_id.setdefault(e.id, []).append(i)
        counts = {"inserted": 0, "updated": 0, "unchanged": len(entries) - len(changed), "reindexed": 0}
        changed_ids = {e.id for e in changed}
        with self.upsert_transaction("faq_encoder", counts) as conn:
            for entry in todo.values():
                if entry.id in changed_ids:
                    counts["updated" if entry.id in known else "inserted"] += 1
                    self._write(conn, entry, note)
                else:
                    counts["reindexed"] += 1
                rows = by_id.get(entry.id, [])
                live = [] if entry.status != "published" else rows
                self.index.replace(conn, entry.id, entry.language, [phrases[i][1] for i in live], vectors[live])
        return counts

    def _write(self, conn: Any, e: FaqEntry, note: str) -> None:
        row = conn.execute(
            """INSERT INTO kb_faq (id, language, question, alternatives, answer, category, tags, status, content_hash)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET language = EXCLUDED.language, question = EXCLUDED.question,
                 alternatives = EXCLUDED.alternatives, answer = EXCLUDED.answer, category = EXCLUDED.category,
                 tags = EXCLUDED.tags, status = EXCLUDED.status, content_hash = EXCLUDED.content_hash,
                 version = kb_faq.version + 1, updated_at = now()
               RETURNING version""",
            (e.id, e.language, e.question, list(e.alternatives), e.answer, e.category, list(e.tags), e.status,
             e.content_hash()),
        ).fetchone()
        conn.execute(
            """INSERT INTO kb_faq_history
                 (faq_id, version, question, alternatives, answer, category, tags, status, note)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (e.id, row[0], e.question, list(e.alternatives), e.answer, e.category, list(e.tags), e.status, note[:200]),
        )

    def get(self, faq_id: str) -> FaqEntry:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM kb_faq WHERE id = %s", (str(faq_id)[:64],)).fetchone()
        if row is None:
            raise NotFound(f"no FAQ entry {str(faq_id)[:64]!r}")
        return _entry(row)

    def history(self, faq_id: str) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT version, question, answer, status, note, changed_at FROM kb_faq_history "
                "WHERE faq_id = %s ORDER BY version",
                (str(faq_id)[:64],),
            ).fetchall()
        if not rows:
            raise NotFound(f"no FAQ entry {str(faq_id)[:64]!r}")
        keys = ("version", "question", "answer", "status", "note", "changed_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def version(self) -> int:
        with self.db.connection() as conn:
            return int(get_meta(conn, "version", "0") or 0)

    def export(self) -> list[FaqEntry]:
        with self.db.connection() as conn:
            return [_entry(r) for r in conn.execute(f"SELECT {COLUMNS} FROM kb_faq ORDER BY id").fetchall()]

    def search(self, query: str, language: Optional[str] = None, limit: int = 5,
               signals: tuple[str, ...] = SIGNALS) -> list[SearchResult]:
        """Published entries ranked by fused signals, the top one with its answer decision;
        `signals` narrows it (the benchmark's ablations, which keep the raw score and threshold)."""
        # The top hit's decision needs its runner-up (the margin), even when one result is asked for.
        found = self.hybrid(query, language, max(int(limit), 2), signals)
        if not found:
            return []
        lang = prepare_query(query, language)[1]
        calibrator = self.calibrator if tuple(signals) == SIGNALS else None
        decisions = decide([h for h, _ in found], lang, calibrator)
        results = [SearchResult(_entry(row), d.confidence, h.scores, h.ranks, d.answerable, d.abstained_reason,
                                h.confidence)
                   for (h, row), d in zip(found, decisions, strict=True)][: max(int(limit), 1)]
        if len(results) == 1:  # the raw score as one result always had it: without a runner-up
            results[0].raw_confidence = confidence(found[0][0], None)
            if calibrator is None:
                results[0].confidence = results[0].raw_confidence
                results[0].answerable = results[0].raw_confidence >= RAW_THRESHOLD
                results[0].abstained_reason = None if results[0].answerable else (
                    f"raw score confidence {results[0].raw_confidence:.2f} below {RAW_THRESHOLD:.2f}")
        return results
