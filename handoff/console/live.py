"""Supervisors' live figures: the report's metric code over a recent window, shared by all pollers.

The figures come from a `LiveMetrics` provider handed to `create_app` (the console's entry point,
`ops/console.py`, passes `analytics.live.ReportFigures`; handoff does not import analytics). They
are synchronous pandas over PostgreSQL, so they run in a worker thread; the result is cached per
window for a few seconds, and concurrent requests for the same window wait for the one computation
in flight instead of starting their own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Optional, Protocol


class LiveMetrics(Protocol):
    """What the console needs to show live figures."""

    def window_name(self, window: Optional[str]) -> str:
        """The canonical name of `window` (the default for None); BadInput (400) for a bad one."""

    def figures(self, url: str, window: str) -> dict[str, Any]:
        """The figures of a canonical window from the database at `url` (blocking)."""


CACHE_SECONDS = 5.0
MAX_ENTRIES = 32  # windows are validated, but keep the cache bounded anyway


class LiveCache:
    """Per-window results with a short lifetime; one computation per window at a time."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._values: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.computations = 0

    async def get(self, key: str, compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        hit = self._fresh(key)
        if hit is not None:
            return hit
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._fresh(key)  # another request filled it while this one waited
            if hit is not None:
                return hit
            value = await compute()
            self.computations += 1
            if len(self._values) >= MAX_ENTRIES:
                self._values.clear()
            self._values[key] = (time.monotonic() + self.ttl, value)
            return value

    def _fresh(self, key: str) -> Optional[dict[str, Any]]:
        found = self._values.get(key)
        if found is not None and found[0] > time.monotonic():
            return found[1]
        return None


async def queue_state(pool: Any) -> list[dict[str, Any]]:
    """Waiting / assigned tickets and the longest wait per queue, right now."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT queue, count(*) FILTER (WHERE status = 'waiting'), count(*) FILTER (WHERE status = 'assigned'),"
            " EXTRACT(EPOCH FROM clock_timestamp() - min(created_at) FILTER (WHERE status = 'waiting'))::float8 "
            "FROM handoff_tickets WHERE status IN ('waiting', 'assigned') GROUP BY queue ORDER BY queue"
        )
        return [
            {"queue": q, "waiting": w, "assigned": a, "oldest_wait_seconds": round(o or 0, 1)}
            for q, w, a, o in await cur.fetchall()
        ]


async def live_payload(app: Any, window: Optional[str]) -> dict[str, Any]:
    """The window's metric figures (cached) plus the queues and agents online right now."""
    provider: LiveMetrics = app.ctx.live_metrics
    name = provider.window_name(window)  # 400 for a bad window before any work
    url = app.ctx.config.postgres_url
    figures = await app.ctx.live_cache.get(name, lambda: asyncio.to_thread(provider.figures, url, name))
    return {**figures, "queues": await queue_state(app.ctx.pool), "agents_online": sorted(app.ctx.online)}
