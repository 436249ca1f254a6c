"""Redis cache of knowledge answers, keyed by normalised query and knowledge version.

The version is part of every key, so any knowledge update (which bumps it) makes old entries
unreachable at once; `invalidate()` also deletes them so memory is not held. A Redis outage
never fails a request: the cache reports a miss, logs once, and retries after a pause.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import unicodedata
from dataclasses import asdict
from typing import Any, Callable, Optional

import redis

from knowledge.answer import Answer
from knowledge.search import clean_query

log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600
RETRY_AFTER = 5.0


def cache_key_text(query: str) -> str:
    """Normalised form two spellings of the same question share (case, width, spaces, end punctuation)."""
    text = unicodedata.normalize("NFKC", clean_query(query)).lower()
    return text.rstrip("?？!！。.~～ ")


class AnswerCache:
    """Answers cached in Redis under `<prefix>:<version>:<kind>:<lang>:<sha1(query)>`."""

    def __init__(self, url: Optional[str], prefix: str = "kefu:kb", ttl: int = TTL_SECONDS,
                 client: Any = None) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self._client = client
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url or self._client)

    def _redis(self) -> Any:
        if self._client is None and self.url:
            self._client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return self._client

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        """Run one Redis operation; on failure mark the cache down for a few seconds and return None."""
        if not self.enabled or time.monotonic() < self._down_until:
            return None
        try:
            return fn(self._redis())
        except Exception as exc:  # redis raises many types (ConnectionError, TimeoutError, ResponseError, OSError)
            with self._lock:
                self.errors += 1
                if self._down_until == 0.0 or self.errors == 1:
                    log.warning("answer cache unavailable (%s); serving without it", exc.__class__.__name__)
                self._down_until = time.monotonic() + RETRY_AFTER
            return None

    def key(self, kind: str, language: str, query: str, version: int) -> str:
        digest = hashlib.sha1(cache_key_text(query).encode("utf-8")).hexdigest()
        return f"{self.prefix}:{version}:{kind}:{language}:{digest}"

    def get(self, kind: str, language: str, query: str, version: int) -> Optional[list[Answer]]:
        raw = self._call(lambda r: r.get(self.key(kind, language, query, version)))
        if raw is None:
            with self._lock:
                self.misses += 1
            self._call(lambda r: r.incr(f"{self.prefix}:stats:misses"))
            return None
        with self._lock:
            self.hits += 1
        self._call(lambda r: r.incr(f"{self.prefix}:stats:hits"))
        try:
            return [Answer(**item) for item in json.loads(raw)]
        except (ValueError, TypeError):
            return None

    def put(self, kind: str, language: str, query: str, version: int, answers: list[Answer]) -> None:
        body = json.dumps([asdict(a) for a in answers], ensure_ascii=False, default=str)
        self._call(lambda r: r.set(self.key(kind, language, query, version), body, ex=self.ttl))

    def invalidate(self) -> int:
        """Delete every cached answer (all versions); returns how many keys went."""

        def _drop(r: Any) -> int:
            gone = 0
            batch: list[Any] = []
            for key in r.scan_iter(match=f"{self.prefix}:*", count=500):
                if b":stats:" in (key if isinstance(key, bytes) else key.encode()):
                    continue
                batch.append(key)
                if len(batch) >= 500:
                    gone += r.delete(*batch)
                    batch = []
            if batch:
                gone += r.delete(*batch)
            return gone

        return int(self._call(_drop) or 0)

    def stats(self) -> dict[str, Any]:
        """This process's counters, plus the shared counters in Redis when reachable."""
        keys = (f"{self.prefix}:stats:hits", f"{self.prefix}:stats:misses")
        shared = self._call(lambda r: r.mget(*keys)) or [None, None]
        total = self.hits + self.misses
        return {
            "hits": self.hits, "misses": self.misses, "errors": self.errors,
            "hit_rate": round(self.hits / total, 4) if total else 0.0,
            "shared_hits": int(shared[0] or 0), "shared_misses": int(shared[1] or 0),
        }
