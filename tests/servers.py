"""Real servers for tests: PostgreSQL (embedded, or KEFU_POSTGRES_URL) and the Kefu stack."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator, Optional

import pytest

from kefu.config import PROJECT_ROOT, Settings, load_settings
from kefu.pgserver import EmbeddedPostgres, with_database

MODEL = PROJECT_ROOT / "models" / "kefu.tar.gz"
# The session's shared stack sends hundreds of messages from 127.0.0.1: its channels' rate limits are off
# (children inherit os.environ); tests/e2e/test_rate_limits.py starts a stack of its own with limits on.
for _rate in ("KEFU_RATE_IP", "KEFU_RATE_SENDER", "KEFU_RATE_NEW_SENDERS"):
    os.environ.setdefault(_rate, "0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_admin_url(tmp_dir: Path) -> Iterator[str]:
    """Yield an admin URL: the configured server, or an embedded one deleted afterwards."""
    configured = os.environ.get("KEFU_POSTGRES_URL")
    if configured:
        yield with_database(configured, "postgres")
        return
    server = EmbeddedPostgres(tmp_dir / "pgdata", delete_on_stop=True)
    try:
        yield server.start()
    finally:
        server.stop()


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stack_settings(var_dir: Path, postgres_url: Optional[str], **extra: str) -> Settings:
    """Settings for a test stack on free ports; without `postgres_url` it starts its own embedded PostgreSQL."""
    return load_settings(
        {
            **({"KEFU_POSTGRES_URL": postgres_url} if postgres_url else {}),
            **extra,
            "KEFU_RASA_PORT": str(free_port()),
            "KEFU_ACTIONS_PORT": str(free_port()),
            "KEFU_CONSOLE_PORT": str(free_port()),
            "KEFU_GRAPH_PORT": str(free_port()),  # the stack's local FalkorDB (knowledge graph)
            "KEFU_VAR_DIR": str(var_dir),
            "KEFU_RASA_TOKEN": uuid.uuid4().hex,
        },
        env_file=var_dir / "no.env",
    )


def require_model() -> Path:
    if not MODEL.is_file():
        pytest.fail(f"no trained model at {MODEL}: run `make model` (make test does it first)")
    return MODEL
