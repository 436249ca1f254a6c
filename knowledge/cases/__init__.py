"""Case library interface: past conversations searchable by similarity, backend chosen by URL scheme.

`postgresql://` (default; the same hybrid search as the FAQ) and `elasticsearch://` / `https://`
(official 8.x client: multi_match + kNN). Validation lives here so both backends reject the same rows.
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
    "postgresql": "knowledge.cases.postgres:PostgresCaseStore",
    "postgres": "knowledge.cases.postgres:PostgresCaseStore",
    "elasticsearch": "knowledge.cases.elasticsearch:ElasticsearchCaseStore",
    "http": "knowledge.cases.elasticsearch:ElasticsearchCaseStore",
    "https": "knowledge.cases.elasticsearch:ElasticsearchCaseStore",
}
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
FIELDS = {"id", "language", "question", "excerpt", "resolution", "category", "satisfaction", "tags", "date"}
ROLES = ("customer", "agent", "bot")
MAX_TURNS = 30
MAX_TEXT = 2000


@dataclass(frozen=True)
class Case:
    id: str
    language: str
    question: str
    resolution: str
    excerpt: tuple[tuple[str, str], ...] = ()  # (role, text) turns
    category: str = ""
    satisfaction: Optional[int] = None  # 1..5, the customer's rating
    tags: tuple[str, ...] = ()
    date: str = ""

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excerpt"] = [{"role": r, "text": t} for r, t in self.excerpt]
        data["tags"] = list(self.tags)
        return data


def parse_case(row: Any, where: str, problems: list[tuple[str, str]]) -> Optional[Case]:
    """Validate one raw case; append (where, what) problems and return None when invalid."""
    before = len(problems)
    if not check_common(row, where, problems, FIELDS, ID_RE):
        return None
    cid = row.get("id")
    texts = {}
    for key, required, limit in (("question", True, 500), ("resolution", True, MAX_TEXT), ("category", False, 64),
                                 ("date", False, 10)):
        value = row.get(key) or ""
        if not isinstance(value, str):
            problems.append((where, f"{key} must be text"))
            value = ""
        if required and not value.strip():
            problems.append((where, f"{key} is empty"))
        if len(value) > limit or "\x00" in value:
            problems.append((where, f"{key} is longer than {limit} characters or contains NUL"))
        texts[key] = value.strip()
    turns: list[tuple[str, str]] = []
    excerpt = row.get("excerpt") or []
    if not isinstance(excerpt, list) or len(excerpt) > MAX_TURNS:
        problems.append((where, f"excerpt must be a list of at most {MAX_TURNS} turns"))
    else:
        for i, turn in enumerate(excerpt, 1):
            ok = isinstance(turn, dict) and turn.get("role") in ROLES and isinstance(turn.get("text"), str)
            if not ok or len(turn["text"]) > MAX_TEXT:
                problems.append((where, f"excerpt turn {i} needs role in {ROLES} and text ≤ {MAX_TEXT} chars"))
            else:
                turns.append((turn["role"], turn["text"].strip()))
    satisfaction = row.get("satisfaction")
    if satisfaction is not None and (isinstance(satisfaction, bool) or satisfaction not in (1, 2, 3, 4, 5)):
        problems.append((where, f"satisfaction must be 1-5, got {str(satisfaction)[:10]!r}"))
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 40 for t in tags) or len(tags) > 20:
        problems.append((where, "tags must be at most 20 texts of ≤ 40 characters"))
        tags = []
    if len(problems) > before:
        return None
    return Case(str(cid), str(row["language"]), texts["question"], texts["resolution"], tuple(turns),
                texts["category"], satisfaction, tuple(tags), texts["date"])


def parse_cases(rows: list[tuple[str, Any]]) -> list[Case]:
    """Validate [(where, raw)]; raise ValidationFailed listing every problem (nothing is written)."""
    return parse_unique(rows, parse_case)


@dataclass
class CaseHit:
    case: Case
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)

    def to_answer(self) -> Answer:
        return Answer(
            text=self.case.resolution, source="case", confidence=self.confidence, ref=self.case.id,
            language=self.case.language, scores=dict(self.scores),
            extra={"question": self.case.question, "satisfaction": self.case.satisfaction,
                   "category": self.case.category},
        )


class CaseStore(Protocol):
    def ensure_schema(self) -> None: ...
    def upsert(self, cases: list[Case], progress: bool = False) -> dict[str, int]: ...
    def get(self, case_id: str) -> Case: ...
    def search(self, query: str, language: Optional[str] = None, limit: int = 5) -> list[CaseHit]: ...
    def export(self) -> list[Case]: ...
    def close(self) -> None: ...


def open_case_store(url: AnyURL, **kwargs: Any) -> CaseStore:
    return load_backend(url, BACKENDS, **kwargs)
