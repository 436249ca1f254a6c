"""Read Rasa's SQL tracker store (table `events`, same database) without importing Rasa.

Rasa's SQLTrackerStore writes one row per event: `id` (serial), `sender_id`, `type_name`,
`timestamp` (epoch float), `intent_name`, `action_name`, `data` (the event as JSON text).
While a conversation is paused Rasa still stores `user` events: the relay reads them here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional

import psycopg
from psycopg_pool import AsyncConnectionPool

from kefu.pii import mask_text

log = logging.getLogger(__name__)

MAX_HISTORY = 200


@dataclass(frozen=True)
class UserEvent:
    id: int
    sender_id: str
    timestamp: float
    text: str
    sentiment: Optional[dict[str, Any]]


def _parse(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        data = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sentiment(data: dict[str, Any]) -> Optional[dict[str, Any]]:
    value = (data.get("parse_data") or {}).get("sentiment")
    return value if isinstance(value, dict) else None


class TrackerEvents:
    """Queries on the `events` table; an absent table (Rasa never ran) reads as empty."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def history(self, conversation_id: str, limit: int = MAX_HISTORY) -> list[dict[str, Any]]:
        """The conversation's last `limit` user and bot turns, oldest first, personal numbers masked
        (Rasa's tracker keeps the raw text; agents see the masked form)."""
        sql = (
            "SELECT id, type_name, timestamp, data FROM events WHERE sender_id = %s "
            "AND type_name IN ('user', 'bot') ORDER BY id DESC LIMIT %s"
        )
        rows = await self._fetch(sql, (conversation_id, limit))
        turns = []
        for row_id, type_name, ts, raw in reversed(rows):
            data = _parse(raw)
            text = data.get("text")
            if not isinstance(text, str) or not text:
                continue
            role = "customer" if type_name == "user" else "bot"
            turn: dict[str, Any] = {"id": row_id, "role": role, "text": mask_text(text)}
            turn["ts"] = float(ts or 0)
            if type_name == "user":
                turn["sentiment"] = _sentiment(data)
                turn["intent"] = ((data.get("parse_data") or {}).get("intent") or {}).get("name")
            turns.append(turn)
        return turns

    async def user_events_after(self, cursors: list[tuple[str, int, float]]) -> list[UserEvent]:
        """User events per (sender_id, after_event_id, after_timestamp), in id order."""
        if not cursors:
            return []
        senders, after_ids, since = zip(*cursors, strict=True)
        sql = (
            "SELECT e.id, e.sender_id, e.timestamp, e.data FROM events e "
            "JOIN unnest(%s::text[], %s::bigint[], %s::float8[]) AS c(sender, after_id, since) "
            "ON e.sender_id = c.sender WHERE e.type_name = 'user' AND e.id > c.after_id AND e.timestamp > c.since "
            "ORDER BY e.id"
        )
        rows = await self._fetch(sql, (list(senders), list(after_ids), list(since)))
        events = []
        for row_id, sender, ts, raw in rows:
            data = _parse(raw)
            text = data.get("text")
            if isinstance(text, str) and text.strip():
                events.append(UserEvent(row_id, sender, float(ts or 0), text, _sentiment(data)))
        return events

    async def _fetch(self, sql: str, params: tuple) -> list[tuple]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return list(await cur.fetchall())
        except psycopg.errors.UndefinedTable:
            log.debug("no events table yet: Rasa has not written a tracker")
            return []
