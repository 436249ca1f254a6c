"""A small encoder runtime: sub-token embeddings with character offsets, plus a sentence vector.

Kefu's NLU needs per-token vectors aligned to the customer's text (for featurisers)
and one sentence vector (for similarity), from any BERT-architecture model, on CPU,
offline. ``Encoder`` tokenises with the model's fast tokenizer (offsets), runs one
of three interchangeable runtimes and pools the e5 way: mean over every attended
token, special tokens and prefix included, L2-normalised when the model says so.

    enc = Encoder.load("models/encoder/multilingual-e5-small")   # onnx-int8
    [e] = enc.encode(["我的订单什么时候发货？"])
    e.tokens.shape, e.offsets, e.sentence.shape                   # (n, 384), [(0, 2), ...], (384,)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kefu.encoder.backends import Backend, OnnxBackend, TFBackend, resolve_onnx, source_identity
from kefu.errors import BadInput

RUNTIMES = ("onnx-int8", "onnx-fp32", "tensorflow")
# Dynamic int8 quantisation takes one activation scale per tensor, so a text's vector depends
# on the other texts (and the padding) in its batch: training encodes in batches, a live
# message alone. `batch_independent=True` encodes these runtimes text by text so training
# and serving agree (the NLU components use it; the knowledge index's retrieval calibration
# was fitted on batched vectors and keeps them until it is refitted).
BATCH_DEPENDENT = frozenset({"onnx-int8"})
# bump when the vectors a given model + settings produce change (caches and trained models key on it)
ENCODING_VERSION = "2"
META_FILE = "kefu_encoder.json"
CHARS_PER_TOKEN_CAP = 50  # characters kept per allowed token before tokenising; see _cap


@dataclass
class Encoded:
    """One text's encoding: sub-token vectors without special/prefix tokens, and the sentence."""

    tokens: np.ndarray  # (n_subtokens, hidden) float32
    offsets: List[Tuple[int, int]]  # [start, end) of each sub-token in the original text
    sentence: np.ndarray  # (hidden,) float32
    cls: np.ndarray  # (hidden,) float32 state of the first token ([CLS] / <s>), for "cls" pooling


def _read_meta(model: str) -> Dict[str, Any]:
    path = Path(model) / META_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: unreadable encoder metadata") from exc
    return data if isinstance(data, dict) else {}


class Encoder:
    """Tokenizer + backend + pooling rules; build with ``Encoder.load``."""

    def __init__(
        self,
        tokenizer: Any,
        backend: Backend,
        *,
        name: str,
        runtime: str,
        max_length: int,
        prefix: str,
        normalize: bool,
        dim: int,
        identity: str,
        batch_independent: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.backend = backend
        self.name = name
        self.runtime = runtime
        self.max_length = max_length
        self.prefix = prefix
        self.normalize = normalize
        self._dim = dim
        self.batch_independent = batch_independent and runtime in BATCH_DEPENDENT
        key = json.dumps([identity, runtime, max_length, prefix, normalize]
                         + ([ENCODING_VERSION, "one-by-one"] if self.batch_independent else []))
        self._fingerprint = f"{Path(name).name or name}:{runtime}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    @classmethod
    def load(
        cls,
        model: str,
        runtime: str = "onnx-int8",
        max_length: int = 128,
        *,
        cache_dir: Optional[Path] = None,
        threads: int = 2,
        prefix: Optional[str] = None,
        batch_independent: bool = False,
    ) -> Encoder:
        """Load a local model directory or HF model name with the chosen runtime.

        ``prefix`` overrides the text prefix from ``kefu_encoder.json`` (e5: ``"query: "``);
        ONNX runtimes export into ``cache_dir`` when the directory has no ONNX file.
        """
        from transformers import AutoConfig, AutoTokenizer  # lazy: 0.3 s; importers may only need constants

        if runtime not in RUNTIMES:
            raise BadInput(f"unknown encoder runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
        model = str(model)
        meta = _read_meta(model)
        try:
            config = AutoConfig.from_pretrained(model)
            tokenizer = AutoTokenizer.from_pretrained(model, use_fast=True)
        except (OSError, ValueError) as exc:
            raise BadInput(f"{model}: not a loadable Hugging Face model (directory or cached name)") from exc
        if not getattr(tokenizer, "is_fast", False):
            raise BadInput(f"{model}: the encoder needs a fast tokenizer (tokenizer.json) for offsets")
        limit = min(int(getattr(config, "max_position_embeddings", 512)), int(meta.get("max_length", 10**9)))
        if not 3 <= int(max_length) <= limit:
            raise BadInput(f"max_length must be between 3 and {limit} for {model}, got {max_length}")
        if runtime == "tensorflow":
            backend: Backend = TFBackend(model)
        else:
            backend = OnnxBackend(resolve_onnx(model, runtime, meta.get("files") or {}, cache_dir), threads)
        return cls(
            tokenizer,
            backend,
            name=model,
            runtime=runtime,
            max_length=int(max_length),
            prefix=str(meta.get("default_prefix", "")) if prefix is None else prefix,
            normalize=bool(meta.get("normalize", False)),
            dim=int(config.hidden_size),
            identity=str(meta.get("stamp") or source_identity(model)),
            batch_independent=batch_independent,
        )

    @property
    def dim(self) -> int:
        """Width of token and sentence vectors."""
        return self._dim

    @property
    def fingerprint(self) -> str:
        """Stable id of model files + runtime + settings: key caches of vectors on it."""
        return self._fingerprint

    def _cap(self, text: str) -> str:
        # A token never covers more than a few dozen characters once whitespace collapses,
        # so cutting here only bounds tokenizer work on megabyte pastes; truncation to
        # max_length happens on tokens afterwards.
        return text[: self.max_length * CHARS_PER_TOKEN_CAP]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> List[Encoded]:
        """Encode ``texts`` (results in input order); long texts are truncated, never rejected."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise BadInput("encode() takes a list of strings")
        if batch_size < 1:
            raise BadInput(f"batch_size must be positive, got {batch_size}")
        if self.batch_independent:
            batch_size = 1
        texts = list(texts)
        if not texts:
            return []
        capped = [self._cap(t) for t in texts]
        enc = self.tokenizer(
            [self.prefix + t for t in capped],
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids: List[List[int]] = enc["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))  # similar lengths pad least
        out: List[Optional[Encoded]] = [None] * len(texts)
        pad_id = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            hidden = self.backend.run(input_ids, mask, np.zeros_like(input_ids))
            for row, i in enumerate(chunk):
                n = len(ids[i])
                out[i] = self._pack(texts[i], hidden[row, :n], enc["offset_mapping"][i], enc["special_tokens_mask"][i])
        return [e for e in out if e is not None]

    def _pack(
        self, text: str, states: np.ndarray, offsets: Sequence[Tuple[int, int]], special: Sequence[int]
    ) -> Encoded:
        """Pool one text and keep the sub-tokens that cover characters of ``text`` itself."""
        if states.shape[0] == 0:  # a tokenizer without special tokens, given "": nothing to pool
            zeros = np.zeros((0, self._dim), dtype=np.float32)
            return Encoded(tokens=zeros, offsets=[], sentence=np.zeros(self._dim, np.float32), cls=zeros[0:1].sum(0))
        sentence = states.mean(axis=0).astype(np.float32)
        if self.normalize:
            norm = float(np.linalg.norm(sentence))
            sentence = sentence / norm if norm > 1e-12 else sentence
        plen = len(self.prefix)
        keep: List[int] = []
        spans: List[Tuple[int, int]] = []
        for j, ((s, e), is_special) in enumerate(zip(offsets, special, strict=True)):
            if is_special:
                continue
            s, e = max(s - plen, 0), min(e - plen, len(text))
            while s < e and text[s].isspace():  # metaspace tokens include the space before a word
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:  # drops prefix tokens and bare word-boundary markers
                keep.append(j)
                spans.append((s, e))
        tokens = states[keep] if keep else np.zeros((0, states.shape[-1]), dtype=np.float32)
        return Encoded(
            tokens=np.ascontiguousarray(tokens, dtype=np.float32),
            offsets=spans,
            sentence=sentence,
            cls=np.array(states[0], dtype=np.float32),
        )
