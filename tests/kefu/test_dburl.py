"""kefu.dburl: one database-URL object, one redactor, one answer to "which database is the tracker's"."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu.config import load_settings
from kefu.dburl import DatabaseURL, redact, tracker_database_url
from kefu.errors import BadInput


def settings_with(url: str | None, database: str | None = None):
    env = {"KEFU_POSTGRES_URL": url or ""}
    if database:
        env["KEFU_DATABASE"] = database
    return load_settings(env, env_file=Path("/nonexistent/.env"))


def test_parts_are_parsed_once_and_unquoted():
    url = DatabaseURL("postgresql://kefu:p%40ss@db.example:5433/tickets?sslmode=require")
    assert (url.scheme, url.hostname, url.port, url.username, url.password, url.database) == (
        "postgresql", "db.example", 5433, "kefu", "p@ss", "tickets")
    assert url.options == {"sslmode": "require"}
    assert str(url) == "postgresql://kefu:p%40ss@db.example:5433/tickets?sslmode=require"  # what drivers get
    assert DatabaseURL(url) == url and DatabaseURL(url) == str(url) and hash(DatabaseURL(url)) == hash(url)


def test_repr_and_redacted_hide_the_password():
    url = DatabaseURL("postgresql://kefu:s3cret@db/kefu")
    assert "s3cret" not in repr(url) and "s3cret" not in url.redacted
    assert url.redacted == "postgresql://kefu:***@db/kefu"
    assert repr(url) == "DatabaseURL('postgresql://kefu:***@db/kefu')"


def test_with_database_keeps_host_socket_credentials_and_options():
    socket = "postgresql://postgres:@/postgres?host=/tmp/x"
    assert str(DatabaseURL(socket).with_database("kefu")) == "postgresql://postgres:@/kefu?host=/tmp/x"
    assert str(DatabaseURL("postgresql:///postgres?host=/tmp/x").with_database("kefu")) == (
        "postgresql:///kefu?host=/tmp/x")  # the empty netloc keeps its `//`
    assert str(DatabaseURL("postgresql://u:pw@h:5432").with_database("kefu")) == "postgresql://u:pw@h:5432/kefu"


def test_replace_changes_only_what_it_is_given():
    url = DatabaseURL("postgres://u:pw@h:5432/db?a=1")
    assert str(url.replace(scheme="postgresql")) == "postgresql://u:pw@h:5432/db?a=1"
    assert str(url.replace(password="n/w @", port=6000)) == "postgres://u:n%2Fw%20%40@h:6000/db?a=1"
    assert url.replace(password="n/w @").password == "n/w @"
    with pytest.raises(TypeError):
        url.replace(path="/x")


def test_bad_port_is_a_bad_input_without_the_password():
    with pytest.raises(BadInput) as caught:
        _ = DatabaseURL("postgresql://u:s3cret@h:99999/kefu").port
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "given, shown",
    [
        ("redis://:pw@localhost:6379/2", "redis://:***@localhost:6379/2"),
        ("postgresql://postgres@localhost/kefu", "postgresql://postgres@localhost/kefu"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unquoted @ in the password
        (None, ""),
        ("", ""),
        ("no url here", "no url here"),
        ("cannot reach postgresql://u:s3cret@h/db, nor redis://:pw@r:6379/0.",
         "cannot reach postgresql://u:***@h/db, nor redis://:***@r:6379/0."),
    ],
)
def test_redact_urls_and_messages(given, shown):
    assert redact(given) == shown
    assert redact(DatabaseURL("neo4j://neo4j:pw@g:7687")) == "neo4j://neo4j:***@g:7687"


@pytest.mark.parametrize(
    "configured, expected",
    [
        (None, None),  # embedded server: `kefu run` passes its URL in KEFU_POSTGRES_URL
        ("postgresql://u:pw@db:5432/tickets", "postgresql://u:pw@db:5432/tickets"),
        ("postgresql://u:pw@db:5432", "postgresql://u:pw@db:5432/kefu_test"),
        ("postgresql://u:pw@db:5432/", "postgresql://u:pw@db:5432/kefu_test"),
        ("postgresql://u:pw@db/?sslmode=require", "postgresql://u:pw@db/kefu_test?sslmode=require"),
        # a Unix-socket server URL names no database even though its query has slashes
        ("postgresql://postgres@/?host=/run/postgresql", "postgresql://postgres@/kefu_test?host=/run/postgresql"),
        ("postgres://postgres@/kefu?host=/run/postgresql", "postgres://postgres@/kefu?host=/run/postgresql"),
    ],
)
def test_tracker_database_url(configured, expected):
    url = tracker_database_url(settings_with(configured, "kefu_test"))
    assert (None if url is None else str(url)) == expected
    assert url is None or isinstance(url, DatabaseURL)


def test_tracker_database_defaults_to_kefu():
    assert str(tracker_database_url(settings_with("postgresql://h"))) == "postgresql://h/kefu"
