"""PostgreSQL backend of the channel state, and the kf `sync_msg` cursor (always PostgreSQL).

A short-lived connection per call: channel traffic is light and it keeps the store usable
from any event loop (Sanic workers, tests) without a pool bound to one loop.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional, Union

import psycopg

from custom_components.channels.wechat.state import ChannelState
from kefu.dburl import DatabaseURL, redact
from kefu.errors import StoreUnavailable

STATE_DDL = """
CREATE TABLE IF NOT EXISTS kefu_channel_state (
    key text PRIMARY KEY,
    value text NOT NULL,
    expires_at timestamptz NOT NULL
)"""
CURSOR_DDL = """
CREATE TABLE IF NOT EXISTS kefu_kf_cursor (
    open_kfid text PRIMARY KEY,
    cursor text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
)"""


async def _connect(url: str) -> Any:
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"PostgreSQL at {redact(url)} is unavailable") from exc


async def _ensure(conn: Any, ddl: str) -> None:
    """CREATE TABLE IF NOT EXISTS, tolerating the race of two processes creating it at once."""
    try:
        await conn.execute(ddl)
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        pass  # the other process won; the table exists


class PostgresState(ChannelState):
    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        super().__init__(url)
        self._migrated = False

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        conn = await _connect(self.url)
        try:
            if not self._migrated:
                await _ensure(conn, STATE_DDL)
                self._migrated = True
            yield conn
        except psycopg.Error as exc:  # connection lost, timeouts, permissions: not the caller's fault
            raise StoreUnavailable(f"PostgreSQL at {redact(self.url)} failed") from exc
        finally:
            await conn.close()

    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        async with self._conn() as conn:
            if random.random() < 0.01:  # keep the table small without a scheduler
                await conn.execute("DELETE FROM kefu_channel_state WHERE expires_at < now()")
            cur = await conn.execute(
                "INSERT INTO kefu_channel_state (key, value, expires_at)"
                " VALUES (%s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at"
                " WHERE kefu_channel_state.expires_at <= now() RETURNING key",
                (key, value, max(1, ttl_s)),
            )
            return await cur.fetchone() is not None

    async def get(self, key: str) -> Optional[str]:
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT value FROM kefu_channel_state WHERE key = %s AND expires_at > now()", (key,)
            )
            row = await cur.fetchone()
            return row[0] if row else None

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO kefu_channel_state (key, value, expires_at)"
                " VALUES (%s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
                (key, value, max(1, ttl_s)),
            )

    async def delete(self, key: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM kefu_channel_state WHERE key = %s", (key,))


class CursorLease:
    """The cursor of one kf account while its advisory lock is held."""

    def __init__(self, conn: Any, open_kfid: str, cursor: str) -> None:
        self._conn = conn
        self.open_kfid = open_kfid
        self.cursor = cursor

    async def save(self, cursor: str) -> None:
        """Persist after a batch is handled: a restart resumes here (dedup covers the rest)."""
        await self._conn.execute(
            "UPDATE kefu_kf_cursor SET cursor = %s, updated_at = now() WHERE open_kfid = %s", (cursor, self.open_kfid)
        )
        self.cursor = cursor


class KfCursorStore:
    """`sync_msg` cursors in PostgreSQL, one sync per kf account at a time across processes."""

    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        self.url = str(url)

    def __repr__(self) -> str:
        return f"KfCursorStore({redact(self.url)!r})"

    @asynccontextmanager
    async def lease(self, open_kfid: str) -> AsyncIterator[CursorLease]:
        conn = await _connect(self.url)
        try:
            await _ensure(conn, CURSOR_DDL)
            await conn.execute("SET statement_timeout = '60s'")
            await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 7))", ("kf:" + open_kfid,))
            try:
                await conn.execute(
                    "INSERT INTO kefu_kf_cursor (open_kfid) VALUES (%s) ON CONFLICT DO NOTHING", (open_kfid,)
                )
                cur = await conn.execute("SELECT cursor FROM kefu_kf_cursor WHERE open_kfid = %s", (open_kfid,))
                row = await cur.fetchone()
                yield CursorLease(conn, open_kfid, row[0] if row else "")
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 7))", ("kf:" + open_kfid,))
        finally:
            await conn.close()

    async def get(self, open_kfid: str) -> str:
        conn = await _connect(self.url)
        try:
            await _ensure(conn, CURSOR_DDL)
            cur = await conn.execute("SELECT cursor FROM kefu_kf_cursor WHERE open_kfid = %s", (open_kfid,))
            row = await cur.fetchone()
            return row[0] if row else ""
        finally:
            await conn.close()
