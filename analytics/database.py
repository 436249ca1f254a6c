"""The tracker-store database for offline tools (report, jobs, iterate): KEFU_POSTGRES_URL, else the
embedded server on var/pgdata (attached to when `kefu run` already started it)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from kefu.config import Settings
from kefu.dburl import DatabaseURL, tracker_database_url
from kefu.pgserver import EmbeddedPostgres


@contextmanager
def tracker_database(settings: Settings) -> Iterator[str]:
    """Yield a psycopg URL of Kefu's database; an embedded server started here is stopped after."""
    configured = tracker_database_url(settings)
    if configured is not None:
        yield str(configured)
        return
    server = EmbeddedPostgres(settings.var_dir / "pgdata")
    admin = server.start()
    try:
        yield str(DatabaseURL(admin).with_database(settings.database))
    finally:
        server.stop()
