"""Sentence vectors for the sentiment head's own training set, pooled exactly like
EncoderFeaturizer pools at inference, and cached by content so retraining (or a
second benchmark run) does not re-encode.

Only sentence vectors are cached (token matrices are not needed here and would make a
benchmark cache of 20k reviews several GB), under a namespace of their own so the
featurizer never reads these token-less entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from kefu.encoder.cache import EncodingCache
from kefu.encoder.runtime import Encoder
from kefu.errors import BadInput

POOLINGS = ("mean", "cls")


class SentenceEncoder:
    """``Encoder`` + pooling + an optional on-disk cache of sentence vectors."""

    def __init__(
        self,
        model: str,
        runtime: str = "onnx-int8",
        max_length: int = 128,
        pooling: str = "mean",
        cache_file: Optional[Path] = None,
        batch_size: int = 32,
    ) -> None:
        if pooling not in POOLINGS:
            raise BadInput(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.encoder = Encoder.load(model, runtime=runtime, max_length=int(max_length),
                                    batch_independent=True)
        self.pooling = pooling
        self.batch_size = int(batch_size)
        namespace = f"{self.encoder.fingerprint}|{max_length}|{pooling}|sentence-only"
        self.cache = EncodingCache(cache_file, namespace)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 sentence vectors, the featurizer's pooling."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cached = self.cache.get_many(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in cached]
        empty_tokens = np.zeros((0, self.dim), dtype=np.float32)
        for start in range(0, len(missing), 512):  # commit progress in chunks: long runs can resume
            chunk = missing[start : start + 512]
            fresh = {}
            for text, encoded in zip(chunk, self.encoder.encode(chunk, batch_size=self.batch_size), strict=True):
                sentence = encoded.cls if self.pooling == "cls" else encoded.sentence
                fresh[text] = (empty_tokens, [], sentence)
            self.cache.put_many(fresh)
            cached.update(fresh)
        rows: List[np.ndarray] = [np.asarray(cached[t][2], dtype=np.float32).reshape(-1) for t in texts]
        return np.vstack(rows)

    def close(self) -> None:
        self.cache.close()
