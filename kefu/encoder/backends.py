"""Inference backends behind ``Encoder``: onnxruntime sessions and TensorFlow.

Each backend maps padded ``int64 [batch, seq]`` ids/mask/types to float32
``[batch, seq, hidden]`` states, so ``Encoder`` can switch runtimes without caring
which library runs the graph. Locating or creating the ONNX files (export on the fly
into a cache for plain HF directories and hub names) also lives here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Protocol

import numpy as np

from kefu.encoder.onnx_export import OUTPUT, export_onnx, quantize_int8
from kefu.errors import BadInput, KefuError

ONNX_FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx"}
_IDENTITY_FILES = (
    "config.json",
    "tokenizer.json",
    "tf_model.h5",
    "model.safetensors",
    "pytorch_model.bin",
    "model.onnx",
    "model.int8.onnx",
    "kefu_encoder.json",
)


class Backend(Protocol):
    """Runs the encoder on one padded batch."""

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray: ...


def default_cache_dir() -> Path:
    """Where ONNX exports of models without ONNX files go (``$XDG_CACHE_HOME/kefu/encoder``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kefu" / "encoder"


def source_identity(model: str) -> str:
    """A digest that changes when the model's files change (name only for hub models)."""
    path = Path(model)
    parts: Dict[str, Any] = {"model": model}
    if path.is_dir():
        parts["model"] = str(path.resolve())
        for name in _IDENTITY_FILES:
            f = path / name
            if f.is_file():
                st = f.stat()
                parts[name] = [st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cache_slot(model: str, cache_dir: Optional[Path]) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model)[:60]
    return Path(cache_dir or default_cache_dir()) / f"{safe}-{source_identity(model)[:16]}"


def resolve_onnx(model: str, runtime: str, files: Dict[str, str], cache_dir: Optional[Path]) -> Path:
    """The ONNX file for ``runtime``: shipped in the model dir, else exported into the cache."""
    fp32_name = files.get("onnx-fp32", ONNX_FILES["onnx-fp32"])
    int8_name = files.get("onnx-int8", ONNX_FILES["onnx-int8"])
    local = Path(model)
    if local.is_dir():
        wanted = local / (fp32_name if runtime == "onnx-fp32" else int8_name)
        if wanted.is_file():
            return wanted
    slot = _cache_slot(model, cache_dir)
    fp32 = local / fp32_name if local.is_dir() and (local / fp32_name).is_file() else slot / "model.onnx"
    if not fp32.is_file():
        try:
            slot.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KefuError(f"cannot create the encoder cache {slot}: {exc}") from exc
        export_onnx(model, fp32)
    if runtime == "onnx-fp32":
        return fp32
    int8 = slot / "model.int8.onnx"
    if not int8.is_file():
        slot.mkdir(parents=True, exist_ok=True)
        quantize_int8(fp32, int8)
    return int8


class OnnxBackend:
    """An onnxruntime CPU session; feeds only the inputs the graph declares."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort  # lazy: only the chosen runtime's library is loaded

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # shape-merge notices are noise, errors still raise
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped pybind errors
            raise BadInput(f"{path}: onnxruntime cannot load this model: {exc}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = OUTPUT if OUTPUT in outputs else outputs[0]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {k: v for k, v in feed.items() if k in self.inputs}
        try:
            (out,) = self.session.run([self.output], feed)
        except Exception as exc:
            raise KefuError(f"onnxruntime failed on a batch of shape {input_ids.shape}: {exc}") from exc
        return np.asarray(out, dtype=np.float32)


class TFBackend:
    """``TFAutoModel`` in eager mode (the reference the ONNX graphs are checked against)."""

    def __init__(self, model: str) -> None:
        from transformers import TFAutoModel  # lazy: TensorFlow (2 s) only for the tensorflow runtime

        try:
            self.model = TFAutoModel.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise BadInput(f"{model}: TensorFlow weights could not be loaded") from exc

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False
        )
        return np.asarray(out.last_hidden_state.numpy(), dtype=np.float32)
