"""PostgreSQL helpers against a real server (embedded, or KEFU_POSTGRES_URL)."""

import uuid

import psycopg
import pytest

from kefu.errors import ConfigError, StoreUnavailable
from kefu.pgserver import database_of, ensure_database, sqlalchemy_url, with_database
from tests.servers import drop_database


def test_url_helpers():
    url = "postgresql://postgres:@/postgres?host=/tmp/x"
    assert with_database(url, "kefu") == "postgresql://postgres:@/kefu?host=/tmp/x"
    assert database_of("postgres://u@h:5432/abc") == "abc"
    assert sqlalchemy_url("postgres://u@h/db").startswith("postgresql://")


def test_ensure_database_is_idempotent(pg_admin_url):
    name = f"kefu_t_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    try:
        ensure_database(url)
        ensure_database(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == name
    finally:
        drop_database(pg_admin_url, name)


def test_hostile_database_names_are_refused(pg_admin_url):
    with pytest.raises(ConfigError):
        ensure_database(with_database(pg_admin_url, 'x"; DROP DATABASE postgres; --'))


def test_unreachable_server_is_a_store_error():
    with pytest.raises(StoreUnavailable):
        ensure_database("postgresql://postgres@127.0.0.1:1/kefu?connect_timeout=2")
