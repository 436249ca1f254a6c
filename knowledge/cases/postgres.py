"""Case library on PostgreSQL: the FAQ's hybrid search (full-text + trigram + vector) over case questions."""

from __future__ import annotations

import json
from typing import Any, Optional

from knowledge.cases import Case, CaseHit
from knowledge.embed import Embedder, shared_embedder
from knowledge.errors import BadInput, NotFound
from knowledge.pg import PgDatabase, PhraseIndex, bump_version, get_meta, meta_ddl, set_meta
from knowledge.search import clean_query, language_of, rank_and_calibrate
from knowledge.urls import StoreURL

COLUMNS = "id, language, question, resolution, excerpt, category, satisfaction, tags, case_date"


def _case(row: Any) -> Case:
    turns = tuple((t["role"], t["text"]) for t in (row[4] or []))
    return Case(row[0], row[1], row[2], row[3], turns, row[5], row[6], tuple(row[7] or ()), row[8] or "")


class PostgresCaseStore:
    """`postgresql://...` — tables kb_case and kb_case_phrase (shares kb_meta's version with the FAQ)."""

    def __init__(self, url: StoreURL, embedder: Optional[Embedder] = None, timeout: float = 3.0) -> None:
        self.url = url
        self.db = PgDatabase(url, timeout=timeout)
        self.embedder = embedder or shared_embedder()
        self.index = PhraseIndex(self.db, "kb_case_phrase", "case_id", "kb_case")

    def __repr__(self) -> str:
        return f"PostgresCaseStore({str(self.url)!r})"

    def ensure_schema(self) -> None:
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(7305002)")
            conn.execute(meta_ddl())
            conn.execute(
                """CREATE TABLE IF NOT EXISTS kb_case (
                    id TEXT PRIMARY KEY, language TEXT NOT NULL CHECK (language IN ('zh', 'en')),
                    question TEXT NOT NULL, resolution TEXT NOT NULL, excerpt JSONB NOT NULL DEFAULT '[]',
                    category TEXT NOT NULL DEFAULT '', satisfaction SMALLINT CHECK (satisfaction BETWEEN 1 AND 5),
                    tags TEXT[] NOT NULL DEFAULT '{}', case_date TEXT NOT NULL DEFAULT '',
                    content_hash TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            for ddl in self.index.ddl():
                conn.execute(ddl)

    def upsert(self, cases: list[Case], progress: bool = False) -> dict[str, int]:
        """Insert or update changed cases in one transaction; unchanged ones are skipped."""
        self.ensure_schema()
        with self.db.connection() as conn:
            known = dict(conn.execute("SELECT id, content_hash FROM kb_case").fetchall())
            reembed = get_meta(conn, "case_encoder") != self.embedder.fingerprint
        todo = [c for c in cases if reembed or known.get(c.id) != c.content_hash()]
        texts = [c.question for c in todo]
        if progress and texts:
            import numpy as np
            from tqdm import tqdm

            chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
            vectors = np.concatenate([self.embedder.embed(c) for c in tqdm(chunks, desc="case embeddings")])
        else:
            vectors = self.embedder.embed(texts) if texts else None
        counts = {"inserted": 0, "updated": 0, "unchanged": len(cases) - len(todo)}
        with self.db.transaction() as conn:
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
            set_meta(conn, "case_encoder", self.embedder.fingerprint)
            if todo:
                counts["version"] = bump_version(conn)
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
        if not isinstance(query, str):
            raise BadInput("query must be text")
        text = clean_query(query)
        if not text:
            return []
        lang = language if language in ("zh", "en") else language_of(text)
        qvec = self.embedder.embed_query(text)
        with self.db.connection() as conn:
            version = int(get_meta(conn, "version", "0") or 0)
            hits = rank_and_calibrate(self.index.rankings(conn, text, lang, qvec, version), max(1, min(limit, 50)))
            if not hits:
                return []
            rows = conn.execute(f"SELECT {COLUMNS} FROM kb_case WHERE id = ANY(%s)", ([h.ref for h in hits],))
            cases = {r[0]: _case(r) for r in rows.fetchall()}
        return [CaseHit(cases[h.ref], h.confidence, h.scores) for h in hits if h.ref in cases]

    def close(self) -> None:
        self.db.close()
