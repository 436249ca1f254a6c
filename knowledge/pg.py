"""PostgreSQL plumbing shared by the FAQ store and the case library.

A connection pool whose failures become `StoreUnavailable`; `PhraseIndex`: one table of
searchable phrases (question + alternatives) with the three hybrid signals; and `PhraseStore`,
the part both stores share (schema lock, batch embedding, the hybrid search itself). pgvector is
used when the server has it; otherwise embeddings are stored as REAL[] and ranked in-process
(logged once), which is exact and fast enough for knowledge bases of a few thousand phrases.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector

from knowledge.embed import Embedder, shared_embedder
from knowledge.errors import BadQuery, StoreUnavailable
from knowledge.search import (
    FUSION,
    SECOND,
    SIGNALS,
    Fusion,
    Hit,
    best_per_ref,
    best_two_per_ref,
    bounded_limit,
    cosine_top,
    fts_terms,
    prepare_query,
    rank_and_calibrate,
    segmented,
    segmenter_fingerprint,
)
from knowledge.urls import StoreURL

log = logging.getLogger(__name__)
_fallback_logged: set[str] = set()
CONNECT_TIMEOUT = 3
CANDIDATES = 20


class PgDatabase:
    """A lazily opened pool to one database; every driver error leaves as a knowledge error."""

    def __init__(self, url: StoreURL, *, max_size: int = 4, timeout: float = CONNECT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.max_size = max_size
        self._pool: Any = None
        self._lock = threading.Lock()
        self.has_vector: Optional[bool] = None

    def __repr__(self) -> str:
        return f"PgDatabase({str(self.url)!r})"

    def _configure(self, conn: Any) -> None:
        if self.has_vector:
            register_vector(conn)

    def _open(self) -> Any:
        with self._lock:
            if self._pool is None:
                conninfo = _conninfo(self.url)
                self._detect(conninfo)
                self._pool = psycopg_pool.ConnectionPool(
                    conninfo, min_size=1, max_size=self.max_size, open=False, timeout=self.timeout,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}, configure=self._configure,
                    check=psycopg_pool.ConnectionPool.check_connection, name="kefu-kb",
                )
                self._pool.open(wait=False)
            return self._pool

    def _detect(self, conninfo: str) -> None:
        """Create pg_trgm and (when available) pgvector once; remember whether vectors are native."""
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
                if available:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                self.has_vector = bool(available) and self.url.options.get("kb_vector") != "array"
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at {self.url}: {exc.__class__.__name__}") from exc
        if not self.has_vector and str(self.url) not in _fallback_logged:
            _fallback_logged.add(str(self.url))
            log.warning("PostgreSQL at %s has no pgvector: vector similarity runs in-process over REAL[]", self.url)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        pool = self._open()
        try:
            with pool.connection(timeout=self.timeout) as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.url} did not answer within {self.timeout:.0f} s") from exc
        except psycopg.errors.UndefinedTable as exc:
            raise StoreUnavailable(f"knowledge tables missing in {self.url}; run `kefu kb load`") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.url} failed: {exc.__class__.__name__}") from exc
        except (psycopg.DataError, psycopg.ProgrammingError, psycopg.IntegrityError) as exc:
            raise BadQuery(f"PostgreSQL rejected a knowledge query: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.connection() as conn:
            with conn.transaction():
                yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def _conninfo(url: StoreURL) -> str:
    """The libpq URL without our own options (`kb_vector=array` forces the REAL[] fallback)."""
    parts = urlsplit(url.raw.replace("postgres://", "postgresql://", 1))
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("kb_")]
    return urlunsplit(parts._replace(query=urlencode(query)))


class PhraseIndex:
    """The searchable phrases of one store (`table` is a trusted constant, never user input)."""

    def __init__(self, db: PgDatabase, table: str, ref_column: str, owner: str) -> None:
        self.db = db
        self.table = table
        self.ref = ref_column
        self.owner = owner
        self._matrix: Optional[tuple[int, list[str], list[str], np.ndarray]] = None

    def ddl(self) -> list[str]:
        vec = "vector" if self.db.has_vector else "REAL[]"
        t = self.table
        return [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                {self.ref} TEXT NOT NULL REFERENCES {self.owner}(id) ON DELETE CASCADE,
                language TEXT NOT NULL, phrase TEXT NOT NULL, norm TEXT NOT NULL,
                tsv TSVECTOR NOT NULL, embedding {vec} NOT NULL)""",
            f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING gin (tsv)",
            f"CREATE INDEX IF NOT EXISTS {t}_trgm ON {t} USING gin (norm gin_trgm_ops)",
            f"CREATE INDEX IF NOT EXISTS {t}_ref ON {t} ({self.ref})",
        ]

    def replace(self, conn: Any, ref: str, language: str, phrases: Sequence[str], vectors: np.ndarray) -> None:
        """Swap the phrases of one document inside the caller's transaction."""
        conn.execute(f"DELETE FROM {self.table} WHERE {self.ref} = %s", (ref,))
        cfg = "english" if language == "en" else "simple"
        rows = [
            (ref, language, p, p.lower(), cfg, segmented(p), self._vec(v))
            for p, v in zip(phrases, vectors, strict=True)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.table} ({self.ref}, language, phrase, norm, tsv, embedding) "
                "VALUES (%s, %s, %s, %s, to_tsvector(%s::regconfig, %s), %s)",
                rows,
            )
        self._matrix = None

    def resegment_if_stale(self, conn: Any) -> int:
        """Recompute every full-text vector when the lexicon changed since they were written
        (inside the caller's transaction); the number of phrases re-segmented."""
        key, current = f"{self.table}_segmenter", segmenter_fingerprint()
        if get_meta(conn, key) == current:
            return 0
        rows = conn.execute(f"SELECT ctid::text, language, phrase FROM {self.table}").fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                f"UPDATE {self.table} SET tsv = to_tsvector(%s::regconfig, %s) WHERE ctid = %s::tid",
                [("english" if lang == "en" else "simple", segmented(phrase), ctid) for ctid, lang, phrase in rows],
            )
        set_meta(conn, key, current)
        return len(rows)

    def _vec(self, v: np.ndarray) -> Any:
        return np.asarray(v, dtype=np.float32) if self.db.has_vector else [float(x) for x in v]

    def rankings(self, conn: Any, query: str, language: str, qvec: Optional[np.ndarray], version: int,
                 limit: int = CANDIDATES) -> dict[str, list[tuple[str, float]]]:
        """Per-signal rankings [(ref, raw score)] for `query`; every value is a bound parameter."""
        cfg = "english" if language == "en" else "simple"
        out: dict[str, list[tuple[str, float]]] = {"fts": [], "trgm": [], "vector": []}
        terms = fts_terms(query)
        if terms:
            rows = conn.execute(
                f"SELECT {self.ref}, ts_rank_cd(tsv, q, 32) AS s FROM {self.table}, "
                "websearch_to_tsquery(%s::regconfig, %s) AS q WHERE language = %s AND tsv @@ q "
                "ORDER BY s DESC LIMIT %s",
                (cfg, terms, language, limit * 4),
            ).fetchall()
            out["fts"] = best_per_ref(rows, limit)
        rows = conn.execute(
            f"SELECT {self.ref}, similarity(norm, %s) AS s FROM {self.table} WHERE language = %s "
            "ORDER BY s DESC LIMIT %s",
            (query.lower(), language, limit * 4),
        ).fetchall()
        out["trgm"] = best_per_ref([r for r in rows if r[1] > 0], limit)
        if qvec is not None:
            out["vector"], out[SECOND] = self._vector_ranking(conn, qvec, language, version, limit)
        return out

    def _vector_ranking(self, conn: Any, qvec: np.ndarray, language: str, version: int,
                        limit: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(best cosine per ref, second-best per ref) over the phrases of `language`."""
        if self.db.has_vector:
            q = np.asarray(qvec, dtype=np.float32)
            rows = conn.execute(
                f"SELECT {self.ref}, 1 - (embedding <=> %s) AS s FROM {self.table} WHERE language = %s "
                "ORDER BY embedding <=> %s LIMIT %s",
                (q, language, q, limit * 4),
            ).fetchall()
            return best_two_per_ref([(r[0], float(r[1])) for r in rows], limit)
        cached = self._matrix
        if cached is None or cached[0] != version:
            rows = conn.execute(f"SELECT {self.ref}, language, embedding FROM {self.table}").fetchall()
            refs = [r[0] for r in rows]
            langs = [r[1] for r in rows]
            matrix = np.array([r[2] for r in rows], dtype=np.float32) if rows else np.zeros((0, len(qvec)))
            cached = self._matrix = (version, refs, langs, matrix)
        _, refs, langs, matrix = cached
        mask = np.array([lang == language for lang in langs], dtype=bool)
        if not mask.any():
            return [], []
        picked = [r for r, m in zip(refs, mask, strict=True) if m]
        return cosine_top(np.asarray(qvec, dtype=np.float32), picked, matrix[mask], limit)


def meta_ddl() -> str:
    return "CREATE TABLE IF NOT EXISTS kb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def get_meta(conn: Any, key: str, default: str = "") -> str:
    row = conn.execute("SELECT value FROM kb_meta WHERE key = %s", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: Any, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO kb_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, value),
    )


def bump_version(conn: Any) -> int:
    """Increment the knowledge version every cache key includes (any FAQ or case change)."""
    row = conn.execute(
        "INSERT INTO kb_meta (key, value) VALUES ('version', '1') ON CONFLICT (key) "
        "DO UPDATE SET value = (kb_meta.value::int + 1)::text RETURNING value"
    ).fetchone()
    return int(row[0])


class PhraseStore:
    """What the FAQ store and the case library share: one owner table of documents (`columns`
    starting with `id`) whose phrases live in a `PhraseIndex`. Subclasses set the class constants
    (trusted names, never user input) and create their own owner table inside `schema()`."""

    owner_table = ""
    phrase_table = ""
    ref_column = ""
    columns = ""
    schema_lock = 0  # pg_advisory_xact_lock key: two loaders never race on DDL

    def __init__(self, url: StoreURL, embedder: Optional[Embedder] = None, timeout: float = 3.0) -> None:
        self.url = url
        self.db = PgDatabase(url, timeout=timeout)
        self.embedder = embedder or shared_embedder()
        self.index = PhraseIndex(self.db, self.phrase_table, self.ref_column, self.owner_table)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.url)!r})"

    @contextmanager
    def schema(self) -> Iterator[Any]:
        """A DDL transaction: lock, kb_meta, the caller's owner table(s), then the phrase index."""
        with self.db.transaction() as conn:
            conn.execute(f"SELECT pg_advisory_xact_lock({int(self.schema_lock)})")
            conn.execute(meta_ddl())
            yield conn
            for ddl in self.index.ddl():
                conn.execute(ddl)

    def embed_all(self, texts: list[str], progress: bool = False, desc: str = "embeddings") -> np.ndarray:
        """(n, dim) vectors for `texts` (a (0, 1) array when there are none), with a progress bar if asked."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        if not progress:
            return self.embedder.embed(texts)
        from tqdm import tqdm  # lazy: only for a progress bar; tqdm is not one of our pinned requirements

        chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
        return np.concatenate([self.embedder.embed(c) for c in tqdm(chunks, desc=desc, unit="batch")])

    @contextmanager
    def upsert_transaction(self, encoder_key: str, counts: dict[str, int]) -> Iterator[Any]:
        """The transaction an upsert writes in. First, phrases written under another lexicon are
        re-segmented (same text, new words; this load's rows are segmented afresh anyway); last, the
        encoder is recorded and the knowledge version bumped when anything searchable changed."""
        with self.db.transaction() as conn:
            resegmented = self.index.resegment_if_stale(conn)
            yield conn
            set_meta(conn, encoder_key, self.embedder.fingerprint)
            if resegmented:
                counts["resegmented"] = resegmented
            if resegmented or any(counts.get(k) for k in ("inserted", "updated", "reindexed")):
                counts["version"] = bump_version(conn)

    def hybrid(self, query: object, language: Optional[str], limit: int,
               signals: tuple[str, ...] = SIGNALS) -> list[tuple[Hit, Any]]:
        """[(hit, owner row)] best first: fused, calibrated signals over the phrases of `language`.

        BadInput unless `query` is text; [] when nothing in it is searchable. `signals` narrows the
        fusion (the benchmark's ablations; one signal alone ranks by that signal's raw score only).
        """
        text, lang = prepare_query(query, language)
        if not text:
            return []
        qvec = self.embedder.embed_query(text) if "vector" in signals else None
        with self.db.connection() as conn:
            version = int(get_meta(conn, "version", "0") or 0)
            rankings = {k: v for k, v in self.index.rankings(conn, text, lang, qvec, version).items()
                        if k in signals or (k == SECOND and len(signals) > 1)}
            fusion = FUSION if len(signals) > 1 else Fusion("score", ((signals[0], 1.0),))
            hits = rank_and_calibrate(rankings, bounded_limit(limit), fusion)
            if not hits:
                return []
            rows = conn.execute(
                f"SELECT {self.columns} FROM {self.owner_table} WHERE id = ANY(%s)", ([h.ref for h in hits],)
            ).fetchall()
        by_id = {row[0]: row for row in rows}
        return [(hit, by_id[hit.ref]) for hit in hits if hit.ref in by_id]

    def close(self) -> None:
        self.db.close()
