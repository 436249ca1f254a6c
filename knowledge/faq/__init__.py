"""FAQ store interface: entries, their validation, and the backend chosen by URL scheme.

Backends implement `FaqStore`; only `postgresql://` exists today (hybrid full-text + trigram +
vector search). Validation lives here so every backend and the loader reject the same rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Protocol

from knowledge.answer import Answer
from knowledge.rows import check_common, parse_unique
from knowledge.urls import AnyURL, load_backend

BACKENDS = {
    "postgresql": "knowledge.faq.postgres:PostgresFaqStore",
    "postgres": "knowledge.faq.postgres:PostgresFaqStore",
}
STATUSES = ("draft", "published", "retired")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
LIMITS = {"question": 300, "answer": 4000, "category": 64, "tag": 40, "tags": 20, "alternatives": 20}
FIELDS = {"id", "language", "question", "alternatives", "answer", "category", "tags", "status"}


@dataclass(frozen=True)
class FaqEntry:
    id: str
    language: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    category: str = ""
    tags: tuple[str, ...] = ()
    status: str = "published"
    version: int = 0
    updated_at: Optional[str] = None

    @property
    def phrases(self) -> list[str]:
        """Everything a customer might type for this entry: question first, then alternatives."""
        return list(dict.fromkeys([self.question, *self.alternatives]))

    def content_hash(self) -> str:
        """Hash of the editable content: an unchanged entry is not re-versioned on reload."""
        body = {k: v for k, v in asdict(self).items() if k not in ("version", "updated_at")}
        return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alternatives"] = list(self.alternatives)
        data["tags"] = list(self.tags)
        return data


def _text(row: dict, key: str, where: str, problems: list, limit: int, required: bool = True) -> str:
    value = row.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append((where, f"{key} must be text, got {type(value).__name__}"))
        return ""
    value = value.strip()
    if required and not value:
        problems.append((where, f"{key} is empty"))
    if len(value) > limit:
        problems.append((where, f"{key} is longer than {limit} characters ({len(value)})"))
    if "\x00" in value:
        problems.append((where, f"{key} contains a NUL character"))
    return value


def _texts(row: dict, key: str, where: str, problems: list, each: int, count: int) -> tuple[str, ...]:
    value = row.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append((where, f"{key} must be a list of texts"))
        return ()
    if len(value) > count:
        problems.append((where, f"{key} has more than {count} items ({len(value)})"))
    for v in value:
        if len(v) > each or "\x00" in v:
            problems.append((where, f"{key} item too long (>{each}) or contains NUL: {v[:30]!r}"))
    return tuple(v.strip() for v in value if v.strip())


def parse_entry(row: Any, where: str, problems: list[tuple[str, str]]) -> Optional[FaqEntry]:
    """Validate one raw row; append (where, what) problems and return None when it is invalid."""
    before = len(problems)
    if not check_common(row, where, problems, FIELDS, ID_RE):
        return None
    fid, language = row.get("id"), row.get("language")
    status = row.get("status", "published")
    if status not in STATUSES:
        problems.append((where, f"status must be one of {STATUSES}, got {str(status)[:20]!r}"))
    question = _text(row, "question", where, problems, LIMITS["question"])
    answer = _text(row, "answer", where, problems, LIMITS["answer"])
    category = _text(row, "category", where, problems, LIMITS["category"], required=False)
    alternatives = _texts(row, "alternatives", where, problems, LIMITS["question"], LIMITS["alternatives"])
    tags = _texts(row, "tags", where, problems, LIMITS["tag"], LIMITS["tags"])
    if len(problems) > before:
        return None
    return FaqEntry(str(fid), str(language), question, answer, alternatives, category, tags, str(status))


def parse_entries(rows: list[tuple[str, Any]]) -> list[FaqEntry]:
    """Validate [(where, raw row)]; raise ValidationFailed with every problem (nothing partial)."""
    return parse_unique(rows, parse_entry)


@dataclass
class SearchResult:
    """Ranked entries with their per-signal scores, for `kefu kb search` and the benchmark."""

    entry: FaqEntry
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    # The "no answer" decision (knowledge/calibrator.py): only a top hit can be answerable.
    answerable: bool = False
    abstained_reason: Optional[str] = None
    raw_confidence: float = 0.0  # the uncalibrated hybrid score, for the benchmark's before/after

    def to_answer(self) -> Answer:
        return Answer(
            text=self.entry.answer, source="faq", confidence=self.confidence, ref=self.entry.id,
            language=self.entry.language, scores=dict(self.scores),
            answerable=self.answerable, abstained_reason=self.abstained_reason,
            extra={"question": self.entry.question, "version": self.entry.version, "category": self.entry.category},
        )


class FaqStore(Protocol):
    def ensure_schema(self) -> None: ...
    def upsert(self, entries: list[FaqEntry], note: str = "load", progress: bool = False) -> dict[str, int]: ...
    def get(self, faq_id: str) -> FaqEntry: ...
    def history(self, faq_id: str) -> list[dict[str, Any]]: ...
    def search(self, query: str, language: Optional[str] = None, limit: int = 5,
               signals: tuple[str, ...] = ("fts", "trgm", "vector")) -> list[SearchResult]: ...
    def export(self) -> list[FaqEntry]: ...
    def version(self) -> int: ...
    def close(self) -> None: ...


def open_faq_store(url: AnyURL, **kwargs: Any) -> FaqStore:
    """The FAQ backend for `url` (e.g. postgresql://...); kwargs go to the backend (embedder=...)."""
    return load_backend(url, BACKENDS, **kwargs)
