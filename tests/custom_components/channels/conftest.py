"""Fixtures of the channel tests: a fresh PostgreSQL database, the fake platform API server,
and Redis when one answers (else those tests skip)."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from kefu.pgserver import with_database
from tests.custom_components.channels.fake_wechat_api import FakeWeChat
from tests.custom_components.channels.live import LiveAiohttp
from tests.servers import drop_database

MP_APP_ID, MP_SECRET = "wx2c2769f8efd9abc2", "mp-secret-DO-NOT-LOG"
CORP_ID, APP_SECRET, KF_SECRET = "wx5823bf96d3bd56c7", "app-secret-DO-NOT-LOG", "kf-secret-DO-NOT-LOG"
REDIS_TEST_DB = 13


@pytest.fixture(scope="module")
def channel_db(pg_admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"kefu_channels_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_admin_url, name)
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture()
def fake_api() -> Iterator[tuple[FakeWeChat, str]]:
    fake = FakeWeChat({MP_APP_ID: {MP_SECRET}, CORP_ID: {APP_SECRET, KF_SECRET}})
    server = LiveAiohttp(fake.app()).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """KEFU_REDIS_URL's server (or 127.0.0.1:6379) on db 13; skip when none answers."""
    import redis

    base = os.environ.get("KEFU_REDIS_URL") or "redis://127.0.0.1:6379/0"
    url = base.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}" if base.count("/") >= 3 else base + f"/{REDIS_TEST_DB}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.flushdb()  # db 13 is reserved for these tests: start from nothing
        client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        pytest.skip("no Redis answers (set KEFU_REDIS_URL or run redis-server on 127.0.0.1:6379)")
    return url
