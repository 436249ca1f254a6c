"""Fine-tune a BERT-family encoder on labelled texts with TensorFlow, then export it as ONNX.

Torch is not a dependency, so this uses the TensorFlow 2.12 that Rasa already installs:
``TFBertModel`` + masked mean (or [CLS]) pooling + dropout + a softmax layer, trained with
AdamW and a linear warm-up/decay schedule. The word-embedding matrix (250k x 384 for
multilingual-e5-small, 80% of the parameters) stays frozen: updating it every step costs
more than the rest of the network on a CPU and a few thousand short messages cannot
teach it much. The tuned encoder is written as a normal model directory (config,
tokenizer, ``kefu_encoder.json``) holding only the files of the chosen runtime, so an
int8 deployment ships ~120 MB, not the 1 GB of every format.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from transformers import AutoTokenizer
from transformers.optimization_tf import create_optimizer

from kefu.encoder.onnx_export import export_onnx, load_tf_bert, quantize_int8
from kefu.errors import BadInput

log = logging.getLogger(__name__)

META_FILE = "kefu_encoder.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
)
RUNTIME_FILES = {"onnx-int8": "model.int8.onnx", "onnx-fp32": "model.onnx", "tensorflow": "tf_model.h5"}


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyper-parameters; the defaults are the usual BERT fine-tuning recipe (Devlin et al.)."""

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_length: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    pooling: str = "mean"
    freeze_embeddings: bool = True
    seed: int = 42

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise BadInput("fine-tuning needs epochs >= 1 and batch_size >= 1")
        if not 0 < self.learning_rate < 1:
            raise BadInput(f"fine-tuning learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 8 <= self.max_length <= 512:
            raise BadInput(f"fine-tuning max_length must be in [8, 512], got {self.max_length}")
        if self.pooling not in ("mean", "cls"):
            raise BadInput(f"fine-tuning pooling must be mean or cls, got {self.pooling!r}")


def _read_meta(model_dir: Path) -> Dict[str, Any]:
    try:
        data = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> List[np.ndarray]:
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    # Widths rounded up to a multiple of 8 so tf.function traces a handful of shapes, not one per batch.
    width = int(math.ceil(max(len(r) for r in rows) / 8) * 8)
    ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def fine_tune(
    model: str | Path,
    texts: Sequence[str],
    labels: Sequence[str],
    out_dir: str | Path,
    config: FineTuneConfig = FineTuneConfig(),
    runtimes: Sequence[str] = ("onnx-int8",),
    progress: Optional[Callable[[str], None]] = None,
) -> Path:
    """Fine-tune ``model`` (a local HF BERT directory) to predict ``labels`` from ``texts``.

    Writes the tuned encoder into ``out_dir`` with the files ``runtimes`` need and returns it.
    The classification layer is discarded: Kefu's intent head is refitted on the tuned
    encoder's features, so training and inference read the very same ONNX outputs.
    """
    config.check()
    say = progress or log.info
    classes = _classes(texts, labels, runtimes)
    src = Path(model)
    if not (src / "config.json").is_file():
        raise BadInput(f"{src}: fine-tuning needs a local Hugging Face model directory")
    meta = _read_meta(src)
    prefix = str(meta.get("default_prefix", ""))
    tokenizer = AutoTokenizer.from_pretrained(str(src), use_fast=True)
    encoded = tokenizer([prefix + t for t in texts], truncation=True, max_length=config.max_length)["input_ids"]
    y = np.array([classes.index(label) for label in labels], dtype=np.int32)

    tf.keras.utils.set_random_seed(config.seed)
    bert = load_tf_bert(src)
    bert.bert.pooler.trainable = False  # unused: we pool ourselves, and it would get no gradients
    if config.freeze_embeddings:
        bert.bert.embeddings.trainable = False
    _train(bert, encoded, y, len(classes), tokenizer.pad_token_id or 0, config, say)
    return _write(bert, src, Path(out_dir), meta, texts, labels, config, runtimes)


def _classes(texts: Sequence[str], labels: Sequence[str], runtimes: Sequence[str]) -> List[str]:
    """The sorted label set, after checking the inputs fit together."""
    if len(texts) != len(labels) or not texts:
        raise BadInput("fine-tuning needs as many labels as texts, and at least one text")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise BadInput("fine-tuning needs at least two different labels")
    unknown = [r for r in runtimes if r not in RUNTIME_FILES]
    if unknown:
        raise BadInput(f"unknown runtime(s) {unknown}; expected {sorted(RUNTIME_FILES)}")
    return classes


def _classifier(bert: Any, n_classes: int, config: FineTuneConfig) -> tuple[Callable[..., Any], Any]:
    """Pooling + dropout + a softmax layer over ``bert``: the logits function and the dense head."""
    dropout = tf.keras.layers.Dropout(config.dropout)
    head = tf.keras.layers.Dense(n_classes, kernel_initializer=tf.keras.initializers.TruncatedNormal(0.02))

    def logits_of(ids: Any, mask: Any, training: bool) -> Any:
        states = bert(input_ids=ids, attention_mask=mask, training=training).last_hidden_state
        if config.pooling == "cls":
            pooled = states[:, 0]
        else:
            m = tf.cast(mask, states.dtype)[:, :, None]
            pooled = tf.reduce_sum(states * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)
        return head(dropout(pooled, training=training))

    return logits_of, head


def _train(bert: Any, encoded: List[List[int]], y: np.ndarray, n_classes: int, pad_id: int,
           config: FineTuneConfig, say: Callable[[str], None]) -> None:
    """AdamW with linear warm-up/decay over shuffled, padded batches; updates ``bert`` in place."""
    logits_of, head = _classifier(bert, n_classes, config)
    rng = np.random.default_rng(config.seed)
    steps = config.epochs * math.ceil(len(encoded) / config.batch_size)
    optimizer, _ = create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=steps,
        num_warmup_steps=int(config.warmup_ratio * steps),
        weight_decay_rate=config.weight_decay,
    )
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits_of(*_pad(encoded[:1], pad_id), training=False)  # build the head's variables

    @tf.function(reduce_retracing=True)
    def step(ids: Any, mask: Any, target: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(target, logits_of(ids, mask, training=True))
        variables = bert.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))  # noqa: B905 - autograph has no zip(strict=)
        return loss

    started = time.monotonic()
    for epoch in range(config.epochs):
        losses = []
        for batch in _batches(len(encoded), config.batch_size, rng):
            ids, mask = _pad([encoded[i] for i in batch], pad_id)
            losses.append(float(step(tf.constant(ids), tf.constant(mask), tf.constant(y[batch]))))
        elapsed = time.monotonic() - started
        say(f"fine-tune epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f} ({elapsed:.0f} s)")


def _write(
    bert: Any,
    src: Path,
    out: Path,
    meta: Dict[str, Any],
    texts: Sequence[str],
    labels: Sequence[str],
    config: FineTuneConfig,
    runtimes: Sequence[str],
) -> Path:
    """Save config + tokenizer + TF weights, export ONNX, keep only what ``runtimes`` need."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".finetune-") as tmp_name:
        tmp = Path(tmp_name)
        bert.save_pretrained(str(tmp))
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        wanted = set(runtimes)
        if wanted & {"onnx-int8", "onnx-fp32"}:
            export_onnx(tmp, tmp / RUNTIME_FILES["onnx-fp32"])
        if "onnx-int8" in wanted:
            quantize_int8(tmp / RUNTIME_FILES["onnx-fp32"], tmp / RUNTIME_FILES["onnx-int8"])
        data_hash = hashlib.sha256(json.dumps([list(texts), list(labels)], ensure_ascii=False).encode()).hexdigest()
        tuned_meta = {
            **meta,
            "files": {r: RUNTIME_FILES[r] for r in runtimes},
            "fine_tuned": {
                "base": str(meta.get("stamp") or src.name),
                "examples": len(texts),
                "labels": len(set(labels)),
                "data_sha256": data_hash,
                "config": config.__dict__,
            },
            "stamp": f"ft-{data_hash[:16]}-{meta.get('stamp', 'hf')}",
        }
        tuned_meta.setdefault("pooling", config.pooling)
        (tmp / META_FILE).write_text(json.dumps(tuned_meta, indent=2, ensure_ascii=False), encoding="utf-8")
        keep = {"config.json", META_FILE, *TOKENIZER_FILES, *(RUNTIME_FILES[r] for r in runtimes)}
        for path in tmp.iterdir():
            if path.name in keep:
                shutil.move(str(path), out / path.name)
    return out
