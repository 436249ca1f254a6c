"""Case library on PostgreSQL: the FAQ's hybrid search (full-text + trigram + vector) over case questions."""

from __future__ import annotations

import json
from typing import Any, Optional

from knowledge.cases import Case, CaseHit
from knowledge.errors import NotFound
from knowledge.pg import PhraseStore, get_meta

COLUMNS = "id, language, question, resolution, excerpt, category, satisfaction, tags, case_date"


def _case(row: Any) -> Case:
    turns = tuple((t["role"], t["text"]) for t in (row[4] or []))
    return Case(row[0], row[1], row[2], row[3], turns, row[5], row[6], tuple(row[7] or ()), row[8] or "")


class PostgresCaseStore(PhraseStore):
    """`postgresql://...` — tables kb_case and kb_case_phrase (shares kb_meta's version with the FAQ)."""

    owner_table = "kb_case"
    phrase_table = "kb_case_phrase"
    ref_column = "case_id"
    columns = COLUMNS
    schema_lock = 7305002

    def ensure_schema(self) -> None:
        with self.schema() as conn:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_case (
                    id TEXT PRIMARY KEY, language TEXT NOT NULL CHECK (language IN ('zh', 'en')),
                    question TEXT NOT NULL, resolution TEXT NOT NULL, excerpt JSONB NOT NULL DEFAULT '[]',
                    category TEXT NOT NULL DEFAULT '', satisfaction SMALLINT CHECK (satisfaction BETWEEN 1 AND 5),
                    tags TEXT[] NOT NULL DEFAULT '{}', case_date TEXT NOT NULL DEFAULT '',
                    content_hash TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )

    def upsert(self, cases: list[Case], progress: bool = False) -> dict[str, int]:
        """Insert or update changed cases in one transaction; unchanged ones are skipped."""
        self.ensure_schema()
        with self.db.connection() as conn:
            known = dict(conn.execute("SELECT id, content_hash FROM kb_case").fetchall())
            reembed = get_meta(conn, "case_encoder") != self.embedder.fingerprint
        todo = [c for c in cases if reembed or known.get(c.id) != c.content_hash()]
        vectors = self.embed_all([c.question for c in todo], progress, "case embeddings")
        counts = {"inserted": 0, "updated": 0, "unchanged": len(cases) - len(todo)}
        with self.upsert_transaction("case_encoder", counts) as conn:
            for i, c in enumerate(todo):
                counts["updated" if c.id in known else "inserted"] += 1
                conn.execute(
                    f"""INSERT INTO kb_case ({COLUMNS}, content_hash) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
                        ON CONFLICT (id) DO UPDATE SET language = EXCLUDED.language, question = EXCLUDED.question,
                          resolution = EXCLUDED.resolution, excerpt = EXCLUDED.excerpt, category = EXCLUDED.category,
                          satisfaction = EXCLUDED.satisfaction, tags = EXCLUDED.tags, case_date = EXCLUDED.case_date,
                          content_hash = EXCLUDED.content_hash, updated_at = now()""",
                    (c.id, c.language, c.question, c.resolution,
                     json.dumps([{"role": r, "text": t} for r, t in c.excerpt], ensure_ascii=False),
                     c.category, c.satisfaction, list(c.tags), c.date, c.content_hash()),
                )
                self.index.replace(conn, c.id, c.language, [c.question], vectors[i : i + 1])
        return counts

    def get(self, case_id: str) -> Case:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM kb_case WHERE id = %s", (str(case_id)[:64],)).fetchone()
        if row is None:
            raise NotFound(f"no case {str(case_id)[:64]!r}")
        return _case(row)

    def export(self) -> list[Case]:
        with self.db.connection() as conn:
            return [_case(r) for r in conn.execute(f"SELECT {COLUMNS} FROM kb_case ORDER BY id").fetchall()]

    def search(self, query: str, language: Optional[str] = None, limit: int = 5) -> list[CaseHit]:
        return [CaseHit(_case(row), h.confidence, h.scores) for h, row in self.hybrid(query, language, limit)]
