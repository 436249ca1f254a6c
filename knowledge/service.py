"""What the actions call: FAQ and case look-ups through the answer cache, with one confidence scale.

Stores are opened lazily from settings (`KEFU_FAQ_URL`, `KEFU_CASES_URL`, `KEFU_REDIS_URL`), so
importing this module does no I/O; store failures surface as `StoreUnavailable` for the caller
to turn into a polite degraded answer.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from kefu.config import Settings, load_settings
from knowledge.answer import Answer
from knowledge.cache import AnswerCache
from knowledge.cases import open_case_store
from knowledge.errors import BadInput
from knowledge.faq import open_faq_store
from knowledge.search import prepare_query

# Answers at or above this confidence are given directly; below it routing decides.
ANSWER_THRESHOLD = 0.5


class KnowledgeService:
    """FAQ + case search with caching; every store is created on first use."""

    def __init__(self, faq: Any = None, cases: Any = None, cache: Optional[AnswerCache] = None,
                 settings: Optional[Settings] = None) -> None:
        self._faq = faq
        self._cases = cases
        self.cache = cache if cache is not None else AnswerCache(settings.redis_url if settings else None)
        self.settings = settings
        self._lock = threading.Lock()

    @property
    def faq(self) -> Any:
        return self._store("_faq", lambda settings: open_faq_store(settings.faq_url))

    @property
    def cases(self) -> Any:
        return self._store("_cases", lambda settings: open_case_store(settings.cases_url))

    def _store(self, attr: str, opener: Callable[[Settings], Any]) -> Any:
        """The store in `attr`, opened from settings on first use (one thread opens it)."""
        with self._lock:
            if getattr(self, attr) is None:
                setattr(self, attr, opener(_require(self.settings)))
            return getattr(self, attr)

    def faq_answers(self, query: str, language: Optional[str] = None, limit: int = 3) -> list[Answer]:
        """Ranked FAQ answers (best first); cached per normalised query and knowledge version."""
        text, lang = prepare_query(query, language)
        if not text:
            return []
        version = self.faq.version()
        cached = self.cache.get("faq", lang, text, version)
        if cached is not None:
            return cached[:limit]
        answers = [r.to_answer() for r in self.faq.search(text, lang, limit=max(limit, 3))]
        self.cache.put("faq", lang, text, version, answers)
        return answers[:limit]

    def similar_cases(self, query: str, language: Optional[str] = None, limit: int = 3) -> list[Answer]:
        text, lang = prepare_query(query, language)
        if not text:
            return []
        return [h.to_answer() for h in self.cases.search(text, lang, limit=limit)]

    def knowledge_changed(self) -> int:
        """Call after any knowledge update: drops cached answers (the version bump already hides them)."""
        return self.cache.invalidate()

    def close(self) -> None:
        for store in (self._faq, self._cases):
            if store is not None:
                store.close()


def _require(settings: Optional[Settings]) -> Settings:
    if settings is None:
        settings = load_settings()
    if not settings.faq_url:
        raise BadInput("no knowledge-base URL: set KEFU_FAQ_URL or KEFU_POSTGRES_URL")
    return settings

