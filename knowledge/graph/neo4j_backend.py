"""Neo4j backend (`neo4j://user:pw@host:7687/database`, also `bolt://`, `neo4j+s://`, `bolt+s://`).

For production: the same named queries as FalkorDB, through the official `neo4j` driver.
Dialect specifics here: a uniqueness constraint instead of FalkorDB's index, and the whole
replacement in one write transaction (FalkorDB swaps a staging key instead).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Optional

import neo4j
from neo4j import exceptions as errors
from neo4j.graph import Node, Path, Relationship

from knowledge.errors import BadInput, BadQuery, StoreUnavailable
from knowledge.graph import queries as q
from knowledge.graph.base import GraphStore, Row, chunks
from knowledge.urls import StoreURL

log = logging.getLogger(__name__)

CONSTRAINT = "CREATE CONSTRAINT kefu_node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE"
BATCH = 1000


def to_params(params: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Check and convert parameters to what the driver packs (lists, dicts with str keys, scalars)."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            if isinstance(value, str) and "\x00" in value:
                raise BadInput("parameter strings must not contain NUL characters")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise BadInput(f"parameter value {value!r} is not a finite number")
            return value
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        if isinstance(value, Mapping):
            if not all(isinstance(key, str) for key in value):
                raise BadInput("map keys in parameters must be strings")
            return {key: convert(item) for key, item in value.items()}
        raise BadInput(f"unsupported parameter type {type(value).__name__}")

    return {name: convert(value) for name, value in (params or {}).items()}


def to_row(record: Any) -> Row:
    """A driver Record as a plain dict; graph elements become their property dicts, temporals ISO strings."""
    return {key: _plain(value) for key, value in record.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "iso_format"):  # neo4j.time Date/DateTime/Time/Duration
        return value.iso_format()
    if isinstance(value, Node | Relationship):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return [_plain(node) for node in value.nodes]
    return value


class Neo4jGraph(GraphStore):
    """Graph store on Neo4j 5 (or any Bolt server that speaks this Cypher subset)."""

    def __init__(self, url: StoreURL, timeout: float = 5.0) -> None:
        super().__init__(url)
        self.uri = f"{url.scheme}://{url.hostname or '127.0.0.1'}:{url.port or 7687}"
        self.database = url.database or None
        self.timeout = timeout
        self._driver: Any = None

    def _get_driver(self) -> Any:
        if self._driver is None:
            auth = (self.url.username, self.url.password or "") if self.url.username else None
            try:
                self._driver = neo4j.GraphDatabase.driver(
                    self.uri,
                    auth=auth,
                    connection_timeout=self.timeout,
                    max_transaction_retry_time=min(self.timeout, 1.0),
                )
            except (ValueError, errors.ConfigurationError) as exc:
                raise BadInput(f"bad Neo4j URL {self.url}: {exc}") from exc
        return self._driver

    def _call(self, fn: Any) -> Any:
        """Run `fn(driver)` and translate driver errors into ours."""
        try:
            return fn(self._get_driver())
        except (errors.ServiceUnavailable, errors.SessionExpired, errors.TransientError, OSError) as exc:
            raise StoreUnavailable(f"Neo4j at {self.url} is unreachable: {exc}") from exc
        except errors.AuthError as exc:
            raise StoreUnavailable(f"Neo4j at {self.url} refused the credentials") from exc
        except (errors.CypherSyntaxError, errors.CypherTypeError, errors.ClientError) as exc:
            raise BadQuery(f"Neo4j rejected the query: {exc.message or exc}") from exc
        except (errors.Neo4jError, errors.DriverError) as exc:
            raise StoreUnavailable(f"Neo4j at {self.url} failed: {exc}") from exc

    def run(self, cypher: str, params: Optional[Mapping[str, Any]] = None, *, write: bool = False) -> list[Row]:
        parameters = to_params(params)
        routing = neo4j.RoutingControl.WRITE if write else neo4j.RoutingControl.READ

        def query(driver: Any) -> list[Row]:
            records, _, _ = driver.execute_query(
                cypher, parameters_=parameters, routing_=routing, database_=self.database
            )
            return [to_row(record) for record in records]

        return self._call(query)

    def ping(self) -> None:
        self._call(lambda driver: driver.verify_connectivity())

    def replace_graph(self, nodes: list[Mapping[str, Any]], relations: list[Mapping[str, Any]], digest: str) -> None:
        """Constraint first (schema changes cannot share a transaction), then one write transaction."""
        self.run(CONSTRAINT, write=True)

        def work(tx: Any) -> None:
            tx.run(q.DELETE_ALL).consume()
            for node_type in q.NODE_TYPES:
                rows = [to_params(dict(node)) for node in nodes if node["type"] == node_type]
                for batch in chunks(rows, BATCH):
                    tx.run(q.create_nodes(node_type), rows=batch).consume()
            for rel_type in q.RELATION_TYPES:
                rows = [
                    {"src": r["from"], "dst": r["to"], "props": to_params(dict(r.get("props") or {}))}
                    for r in relations
                    if r["type"] == rel_type
                ]
                for batch in chunks(rows, BATCH):
                    tx.run(q.create_relations(rel_type), rows=batch).consume()
            tx.run(q.SET_META, id=q.META_ID, digest=digest).consume()

        def replace(driver: Any) -> None:
            with driver.session(database=self.database) as session:
                session.execute_write(work)

        self._call(replace)
        log.info("Neo4j graph replaced: %d nodes, %d relations", len(nodes), len(relations))

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None
