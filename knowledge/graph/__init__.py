"""Knowledge graph over Cypher: FalkorDB (default, local) or Neo4j (production).

`open_graph(url)` picks the backend by URL scheme; `load_graph(url, directory)` loads the
seed content idempotently. Backend modules are imported lazily, so the Neo4j driver is only
needed when a `neo4j://`/`bolt://` URL is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from knowledge.graph.loader import load_into, read_graph_dir
from knowledge.urls import AnyURL, load_backend

if TYPE_CHECKING:
    from knowledge.graph.base import GraphStore

BACKENDS = {
    "falkordb": "knowledge.graph.falkordb_backend:FalkorDBGraph",
    "neo4j": "knowledge.graph.neo4j_backend:Neo4jGraph",
    "neo4j+s": "knowledge.graph.neo4j_backend:Neo4jGraph",
    "bolt": "knowledge.graph.neo4j_backend:Neo4jGraph",
    "bolt+s": "knowledge.graph.neo4j_backend:Neo4jGraph",
}


def open_graph(url: AnyURL) -> GraphStore:
    """A graph store for `url` (no connection is made until the first query)."""
    return load_backend(url, BACKENDS)


def load_graph(url: AnyURL, directory: Union[str, Path], force: bool = False) -> dict[str, int]:
    """Validate and load `directory`'s graph files; returns counts of nodes/relations and `changed` (0/1)."""
    with open_graph(url) as store:
        return load_into(store, directory, force=force)


def validate_dir(directory: Union[str, Path]) -> None:
    """Raise ValidationFailed (file, section, row number) unless the graph files are valid; writes nothing."""
    read_graph_dir(directory)


def graph_url_for(settings: object) -> str:
    """KEFU_GRAPH_URL, or the local FalkorDB that `kefu run` starts on KEFU_GRAPH_PORT."""
    configured = getattr(settings, "graph_url", None)
    return configured or f"falkordb://127.0.0.1:{getattr(settings, 'graph_port', 6479)}/kefu"


__all__ = ["BACKENDS", "open_graph", "load_graph", "validate_dir", "graph_url_for"]
