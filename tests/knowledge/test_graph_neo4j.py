"""Neo4j backend. No Neo4j server runs on these machines (and FalkorDB's Bolt endpoint is experimental),
so the live tests run only when KEFU_NEO4J_URL is set and are reported as skipped otherwise.
Parameter and record translation are tested with the real driver's types, without a server."""

from __future__ import annotations

import os
import uuid

import neo4j
import pytest
from neo4j.time import Date, DateTime

from knowledge.errors import BadInput, BadQuery, StoreUnavailable
from knowledge.graph import load_graph, open_graph
from knowledge.graph.neo4j_backend import Neo4jGraph, to_params, to_row
from knowledge.graph.qa import GraphQA
from tests.knowledge.conftest_graph import GRAPH_DIR
from tests.servers import free_port

NEO4J_URL = os.environ.get("KEFU_NEO4J_URL")
live = pytest.mark.skipif(not NEO4J_URL, reason="KEFU_NEO4J_URL not set: no Neo4j server to test against")


def test_schemes_select_the_neo4j_backend() -> None:
    for scheme in ("neo4j", "bolt", "neo4j+s", "bolt+s"):
        store = open_graph(f"{scheme}://user:pw@db.example:7687/kefu")
        assert isinstance(store, Neo4jGraph)
        assert store.uri == f"{scheme}://db.example:7687" and store.database == "kefu"
        assert "pw" not in repr(store)


def test_parameters_are_converted_and_checked() -> None:
    params = to_params({"a": (1, 2), "m": {"k": [None, True, 1.5, "x"]}, "s": "白金卡"})
    assert params == {"a": [1, 2], "m": {"k": [None, True, 1.5, "x"]}, "s": "白金卡"}
    for bad in ({"v": float("inf")}, {"v": {1: "x"}}, {"v": object()}, {"v": "a\x00b"}, {"v": {1, 2}}):
        with pytest.raises(BadInput):
            to_params(bad)


def test_records_become_plain_rows() -> None:
    record = neo4j.Record({"id": "credit_gold", "amount": 200, "aliases": ["金卡"], "when": Date(2026, 11, 25),
                           "at": DateTime(2026, 11, 25, 9, 0, 0), "m": {"d": Date(2020, 1, 2)}})  # fmt: skip
    row = to_row(record)
    assert row["id"] == "credit_gold" and row["amount"] == 200 and row["aliases"] == ["金卡"]
    assert row["when"] == "2026-11-25" and row["at"].startswith("2026-11-25T09:00:00")
    assert row["m"] == {"d": "2020-01-02"}


def test_unreachable_server_is_store_unavailable() -> None:
    store = open_graph(f"bolt://neo4j:pw@127.0.0.1:{free_port()}/neo4j")
    with pytest.raises(StoreUnavailable):
        store.counts()
    store.close()


@pytest.fixture
def neo4j_store() -> Neo4jGraph:
    assert NEO4J_URL
    store = open_graph(NEO4J_URL)
    yield store
    store.close()


@live
def test_live_load_and_questions(neo4j_store: Neo4jGraph) -> None:
    result = load_graph(NEO4J_URL, GRAPH_DIR, force=True)
    assert load_graph(NEO4J_URL, GRAPH_DIR)["changed"] == 0
    assert neo4j_store.counts() == {"nodes": result["nodes"], "relations": result["relations"]}
    answer = GraphQA(neo4j_store).answer("白金卡年费多少", "zh")
    assert answer is not None and "2,000元/年" in answer.text
    rows = neo4j_store.products_without_fee("foreign_transaction_fee")
    assert {r["id"] for r in rows} == {"credit_platinum", "credit_travel"}


@live
def test_live_hostile_parameters(neo4j_store: Neo4jGraph) -> None:
    hostile = f'x"}}) MATCH (n) DETACH DELETE n // {uuid.uuid4()}'
    assert neo4j_store.node(hostile) is None
    assert neo4j_store.run("RETURN $v AS v", {"v": hostile}) == [{"v": hostile}]
    with pytest.raises(BadQuery):
        neo4j_store.run("MATCH (n RETURN n")
