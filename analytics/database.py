"""The tracker-store database for offline tools (report, jobs, iterate): KEFU_POSTGRES_URL, else the
embedded server on var/pgdata (attached to when `kefu run` already started it)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

from kefu.config import Settings
from kefu.pgserver import EmbeddedPostgres, with_database


@contextmanager
def tracker_database(settings: Settings) -> Iterator[str]:
    """Yield a psycopg URL of Kefu's database; an embedded server started here is stopped after."""
    if settings.postgres_url:
        url = settings.postgres_url
        yield url if urlsplit(url).path.lstrip("/") else with_database(url, settings.database)
        return
    server = EmbeddedPostgres(settings.var_dir / "pgdata")
    admin = server.start()
    try:
        yield with_database(admin, settings.database)
    finally:
        server.stop()
