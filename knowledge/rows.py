"""Validating a batch of raw rows: every problem is collected before anything is written."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Protocol, TypeVar

from knowledge.errors import ValidationFailed


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)
LANGUAGES = ("zh", "en")
Problems = list[tuple[str, str]]


def parse_unique(rows: list[tuple[str, Any]], parse_one: Callable[[Any, str, Problems], Optional[T]]) -> list[T]:
    """Parse [(where, raw row)] with `parse_one`; ValidationFailed lists every problem, duplicate ids included."""
    problems: Problems = []
    items: list[T] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        item = parse_one(row, where, problems)
        if item is None:
            continue
        if item.id in seen:
            problems.append((where, f"duplicate id {item.id!r} (first at {seen[item.id]})"))
            continue
        seen[item.id] = where
        items.append(item)
    if problems:
        raise ValidationFailed(problems)
    return items


def check_common(row: Any, where: str, problems: Problems, fields: set[str], id_re: re.Pattern[str]) -> bool:
    """The checks every row kind shares (a mapping, known fields, id, zh/en); False if not a mapping."""
    if not isinstance(row, dict):
        problems.append((where, f"expected a mapping, got {type(row).__name__}"))
        return False
    unknown = sorted(set(map(str, row)) - fields)
    if unknown:
        problems.append((where, f"unknown field(s): {', '.join(unknown)}"))
    rid = row.get("id")
    if not isinstance(rid, str) or not id_re.match(rid):
        problems.append((where, f"id must match {id_re.pattern}, got {str(rid)[:40]!r}"))
    if row.get("language") not in LANGUAGES:
        problems.append((where, f"language must be one of {LANGUAGES}, got {str(row.get('language'))[:10]!r}"))
    return True
