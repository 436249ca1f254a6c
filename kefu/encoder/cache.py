"""A content-addressed cache of encodings, so retraining after a small data change
re-encodes only the new or edited examples.

Keyed by SHA-256 of (encoder fingerprint, max length, text); values are the token
matrix, the sub-token offsets and the sentence vector. SQLite keeps it one file,
safe for concurrent readers, with no server.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from kefu.errors import StoreUnavailable

SCHEMA = "CREATE TABLE IF NOT EXISTS encodings (key TEXT PRIMARY KEY, payload BLOB NOT NULL)"


def _pack(tokens: np.ndarray, offsets: list[tuple[int, int]], sentence: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        tokens=tokens.astype(np.float32),
        offsets=np.asarray(offsets, dtype=np.int32).reshape(-1, 2),
        sentence=sentence.astype(np.float32),
    )
    return buffer.getvalue()


def _unpack(payload: bytes) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        offsets = [(int(a), int(b)) for a, b in data["offsets"]]
        return data["tokens"], offsets, data["sentence"]


class EncodingCache:
    """get_many/put_many over a SQLite file; `None` path means a no-op cache."""

    def __init__(self, path: Optional[Path], namespace: str) -> None:
        self.namespace = namespace
        self.hits = 0
        self.misses = 0
        self._conn: Optional[sqlite3.Connection] = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(path), timeout=30)
                self._conn.execute(SCHEMA)
                self._conn.commit()
            except (OSError, sqlite3.Error) as exc:
                raise StoreUnavailable(f"cannot open the encoding cache at {path}") from exc

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.namespace}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get_many(self, texts: Iterable[str]) -> dict[str, tuple[np.ndarray, list[tuple[int, int]], np.ndarray]]:
        """Cached encodings for the texts that have one, keyed by text."""
        found: dict[str, tuple[np.ndarray, list[tuple[int, int]], np.ndarray]] = {}
        texts = list(dict.fromkeys(texts))
        if self._conn is None:
            self.misses += len(texts)
            return found
        keys = {self.key(t): t for t in texts}
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, payload in self._conn.execute(f"SELECT key, payload FROM encodings WHERE key IN ({marks})", chunk):
                found[keys[key]] = _unpack(payload)
        self.hits += len(found)
        self.misses += len(texts) - len(found)
        return found

    def put_many(self, items: dict[str, tuple[np.ndarray, list[tuple[int, int]], np.ndarray]]) -> None:
        if self._conn is None or not items:
            return
        rows = [(self.key(text), _pack(*value)) for text, value in items.items()]
        self._conn.executemany("INSERT OR REPLACE INTO encodings (key, payload) VALUES (?, ?)", rows)
        self._conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
