"""Reading the seed content in `data/knowledge/` with row-numbered validation.

Every file is parsed and validated before any store is touched, so a bad row means nothing
is written. `content_hash()` lets `make run` skip loading when the seed has not changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from knowledge.cases import Case, parse_cases
from knowledge.errors import ValidationFailed
from knowledge.faq import FaqEntry, parse_entries

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000


def _read_rows(path: Path, key: str, root: Path, problems: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    """[(where, raw row)] from a YAML file with a top-level `key` list, or JSONL (one object a line)."""
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValidationFailed([(str(rel), f"file larger than {MAX_FILE_BYTES // 2**20} MB")])
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([(str(rel), "not UTF-8 text")]) from exc
    except OSError as exc:
        raise ValidationFailed([(str(rel), f"unreadable: {exc.strerror}")]) from exc
    if path.suffix == ".jsonl":
        rows: list[tuple[str, Any]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{rel} line {number}", json.loads(line)))
            except ValueError as exc:
                problems.append((f"{rel} line {number}", f"invalid JSON: {exc}"))
        return rows
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed([(str(rel), f"invalid YAML: {str(exc).splitlines()[0]}")]) from exc
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise ValidationFailed([(str(rel), f"expected a mapping with a `{key}:` list")])
    return [(f"{rel} row {i}", row) for i, row in enumerate(doc[key], 1)]


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml", ".jsonl") and p.is_file())


def _collect(directory: Path, key: str, root: Path, problems: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    """Rows of every file; unreadable files and unparsable lines go to `problems`, the rest are returned."""
    rows: list[tuple[str, Any]] = []
    for path in _files(directory):
        try:
            rows.extend(_read_rows(path, key, root, problems))
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    if len(rows) > MAX_ROWS:
        problems.append((str(directory), f"more than {MAX_ROWS} rows"))
        return []
    return rows


def _parse(root: Path, part: str, parser: Any) -> list:
    problems: list[tuple[str, str]] = []
    rows = _collect(root / part, part, root, problems)
    try:
        parsed = parser(rows)
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    if problems:
        raise ValidationFailed(sorted(problems, key=lambda p: _order(p[0])))
    return parsed


def _order(where: str) -> tuple[str, int]:
    name, _, number = where.rpartition(" ")
    return (name, int(number)) if number.isdigit() else (where, 0)


def read_faq(root: Path) -> list[FaqEntry]:
    return _parse(root, "faq", parse_entries)


def read_cases(root: Path) -> list[Case]:
    return _parse(root, "cases", parse_cases)


def content_hash(root: Path, parts: tuple[str, ...] = ("faq", "cases", "graph", "rules")) -> str:
    """sha256 over the relative paths and bytes of every content file (stable across machines)."""
    digest = hashlib.sha256()
    for part in parts:
        base = root / part
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]
