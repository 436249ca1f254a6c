"""Session-wide real servers: one PostgreSQL and one running Kefu stack for all tests."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from kefu.config import Settings
from kefu.pgserver import with_database
from ops.runner import Stack
from tests.servers import drop_database, postgres_admin_url, require_model, stack_settings
from tests.tiny_models import build_tiny_bert

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from postgres_admin_url(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def kefu_stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Action server + Rasa server on free ports, tracker store in a fresh database."""
    model = require_model()
    database = f"kefu_test_{uuid.uuid4().hex[:8]}"
    settings = stack_settings(tmp_path_factory.mktemp("var"), with_database(pg_admin_url, database))
    stack = Stack(settings, model)
    try:
        stack.start()
        yield settings
    finally:
        stack.stop()
        drop_database(pg_admin_url, database)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random BERT on disk, shared by the encoder and component tests."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
