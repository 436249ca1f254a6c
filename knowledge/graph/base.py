"""The graph store interface: one set of named Cypher queries (`queries.py`) run by any backend.

Backends (`falkordb_backend`, `neo4j_backend`) only know how to run Cypher with parameters,
how to replace the whole graph atomically and how to create their own indexes; everything
the assistant asks of the graph lives here, written once.
"""

from __future__ import annotations

import abc
from typing import Any, Iterable, Mapping, Optional

from knowledge.errors import BadInput
from knowledge.graph import queries as q
from knowledge.urls import StoreURL

Row = dict[str, Any]
MAX_PARAM_CHARS = 10_000  # a parameter longer than this is hostile input, never a product name


class GraphStore(abc.ABC):
    """A knowledge graph reached through Cypher. Errors: StoreUnavailable, BadQuery, BadInput."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"

    # -- what a backend implements -------------------------------------------------
    @abc.abstractmethod
    def run(self, cypher: str, params: Optional[Mapping[str, Any]] = None, *, write: bool = False) -> list[Row]:
        """Run one parameterised query; rows as dicts keyed by the RETURN aliases."""

    @abc.abstractmethod
    def replace_graph(self, nodes: list[Mapping[str, Any]], relations: list[Mapping[str, Any]], digest: str) -> None:
        """Make the stored graph exactly `nodes` + `relations`, all or nothing."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers."""

    def close(self) -> None:
        """Release connections (backends with pools override)."""
        return None

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the questions the assistant asks ------------------------------------------
    def counts(self) -> dict[str, int]:
        nodes = self.run(q.COUNT_NODES)
        relations = self.run(q.COUNT_RELATIONS)
        return {"nodes": int(nodes[0]["n"]) if nodes else 0, "relations": int(relations[0]["n"]) if relations else 0}

    def digest(self) -> Optional[str]:
        """Content digest of the last load (None for an empty or foreign graph)."""
        rows = self.run(q.META_DIGEST, {"id": q.META_ID})
        return rows[0]["digest"] if rows else None

    def catalog(self) -> list[Row]:
        """Every node's id, type, kind, names and aliases: the vocabulary for entity look-up."""
        return self.run(q.CATALOG)

    def node(self, node_id: str) -> Optional[Row]:
        rows = self.run(q.NODE, {"id": _param(node_id)})
        return rows[0] if rows else None

    def related(self, node_id: str, relation: str) -> list[Row]:
        """Targets of `relation` edges from `node_id`, with the edge's own properties."""
        query = q.RELATED.get(relation)
        if query is None:
            raise ValueError(f"no query for relation {relation!r}")
        return self.run(query, {"id": _param(node_id)})

    def fee(self, product_id: str, fee_id: str) -> Optional[Row]:
        rows = self.run(q.FEE_OF, {"product": _param(product_id), "fee": _param(fee_id)})
        return rows[0] if rows else None

    def products_without_fee(self, fee_id: str, category: Optional[str] = None) -> list[Row]:
        return self.run(q.PRODUCTS_WITHOUT_FEE, {"fee": _param(fee_id), "category": _param(category)})

    def fee_across(self, fee_id: str, category: Optional[str] = None) -> list[Row]:
        """One fee on every product (of one category) that has it, with amounts and notes."""
        return self.run(q.FEE_ACROSS, {"fee": _param(fee_id), "category": _param(category)})

    def products_in(self, category_id: str) -> list[Row]:
        return self.run(q.PRODUCTS_IN, {"category": _param(category_id)})

    def products_with(self, relation: str, target_id: str) -> list[Row]:
        """Sources of `relation` edges into `target_id` (e.g. which products are available via the app)."""
        query = q.RELATED_INTO.get(relation)
        if query is None:
            raise ValueError(f"no query for relation {relation!r}")
        return self.run(query, {"id": _param(target_id)})


def _param(value: Any) -> Any:
    """Parameters are only ever data; reject oversized ones before they reach a server."""
    if isinstance(value, str) and len(value) > MAX_PARAM_CHARS:
        raise BadInput(f"query parameter of {len(value)} characters is too long")
    return value


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
