"""Sentence vectors for the knowledge stores, from the shared offline encoder.

e5 models are trained with "query: " on both sides for symmetric tasks (FAQ matching is
question ↔ question), and the runtime already prepends the model's `default_prefix`
("query: ") to every text, so stored phrases and customer queries are encoded alike.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from kefu.config import PROJECT_ROOT
from kefu.encoder.runtime import Encoder
from kefu.errors import StoreUnavailable
from knowledge.search import clean_query

DEFAULT_MODEL = PROJECT_ROOT / "models" / "encoder" / "multilingual-e5-small"


class Embedder:
    """Lazily loaded encoder + a small LRU of query vectors (repeated questions are common)."""

    def __init__(self, model_dir: Path | str = DEFAULT_MODEL, runtime: str = "onnx-int8", max_length: int = 128,
                 cache_size: int = 2048) -> None:
        self.model_dir = Path(model_dir)
        self.runtime = runtime
        self.max_length = max_length
        self._encoder = None
        self._lock = threading.Lock()
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @property
    def encoder(self):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._encoder is None:
                # the store forks no workers, but pytest/launchers do; keep tokenizers from warning
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

                if not self.model_dir.is_dir():
                    raise StoreUnavailable(f"encoder model missing at {self.model_dir}; run `make model`")
                self._encoder = Encoder.load(str(self.model_dir), runtime=self.runtime, max_length=self.max_length)
            return self._encoder

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    @property
    def fingerprint(self) -> str:
        """Identifies model + runtime: stored vectors are recomputed when it changes."""
        return str(self.encoder.fingerprint)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 unit vectors in input order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.encoder.encode(list(texts), batch_size=batch_size)
        return np.stack([e.sentence for e in encoded]).astype(np.float32)

    def prime(self, texts: Sequence[str]) -> None:
        """Embed many future queries in batches (ticket clustering) and keep them in the LRU."""
        todo = [t for t in dict.fromkeys(clean_query(t) for t in texts) if t and t not in self._lru]
        todo = todo[: self._cache_size]
        if todo:
            vectors = self.embed(todo)
            with self._lock:
                for t, v in zip(todo, vectors, strict=True):
                    self._lru[t] = v
                while len(self._lru) > self._cache_size:
                    self._lru.popitem(last=False)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._lru.get(text)
            if hit is not None:
                self._lru.move_to_end(text)
                return hit
        vec = self.embed([text])[0]
        with self._lock:
            self._lru[text] = vec
            if len(self._lru) > self._cache_size:
                self._lru.popitem(last=False)
        return vec


_shared: Optional[Embedder] = None


def shared_embedder() -> Embedder:
    """One embedder per process (the model is ~120 MB; load it once)."""
    global _shared
    if _shared is None:
        _shared = Embedder()
    return _shared
