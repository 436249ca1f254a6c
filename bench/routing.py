"""Routing accuracy on the labelled set data/routing_eval/turns.yml (zh + en): the cascade and the tree side by side.

Each snippet runs through the real trained model (ops.routing_replay: `Agent.parse_message`,
the action server's frustration rule over the snippet's turns), then through both routers with
the production data/routing.yml: the cascade (`kefu.routing.decide`) and, when a tree file exists
(`kefu routing train`), the learned tree behind its guard rails (`decide_with_tree`, whether or not
it is approved: the bench compares, it does not route live). Prints accuracy overall and per
language, per-route precision/recall, the confusion of each router, the explicit requests routed
to the bot (must be 0), the routing time per turn, and the tree's misses.

    python bench/routing.py [--model models/kefu.tar.gz] [--turns data/routing_eval/turns.yml]

The evaluation snippets are for evaluation only: the tree is trained on data/routing_train/turns.yml
and its depth chosen by cross-validation there. Some short requests ("转人工") are close to NLU
training examples, so NLU confidence here is optimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kefu.routing.decision import ROUTES, RouteDecision, decide  # noqa: E402
from kefu.routing.router import decide_with_tree, tree_path  # noqa: E402
from kefu.routing.settings import load_routing  # noqa: E402
from kefu.routing.tree import TreeError, load_tree  # noqa: E402
from ops.routing_replay import Replayed, load_agent, load_turns, replay_all  # noqa: E402

Result = tuple[dict, str, dict]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run_router(replayed: list[Replayed],
               route: Callable[[Replayed], RouteDecision]) -> tuple[list[Result], list[float]]:
    results, times = [], []
    for item in replayed:
        started = time.perf_counter()
        decision = route(item)
        times.append((time.perf_counter() - started) * 1000)
        results.append((item.turn, decision.route, decision.record))
    return results, times


def summary(results: list[Result]) -> dict[str, Any]:
    pairs = Counter((turn["route"], got) for turn, got, _ in results)
    per_route = {}
    for route in ROUTES:
        predicted = sum(n for (_, got), n in pairs.items() if got == route)
        support = sum(n for (exp, _), n in pairs.items() if exp == route)
        per_route[route] = (pairs[(route, route)] / predicted if predicted else None,
                            pairs[(route, route)] / support if support else None, support)
    langs = {}
    for lang in ("zh", "en"):
        subset = [(t, g) for t, g, _ in results if t["lang"] == lang]
        langs[lang] = (sum(g == t["route"] for t, g in subset), len(subset))
    explicit_bot = sum(1 for _, g, r in results if r.get("intent") == "ask_human" and g == "bot")
    labelled_explicit_bot = sum(1 for t, g, _ in results if t["route"] == "human" and g == "bot")
    return {"correct": pairs_total(pairs), "total": len(results), "pairs": pairs, "per_route": per_route,
            "langs": langs, "explicit_bot": explicit_bot, "human_to_bot": labelled_explicit_bot}


def pairs_total(pairs: Counter) -> int:
    return sum(n for (exp, got), n in pairs.items() if exp == got)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0%}"


def print_side_by_side(named: dict[str, dict[str, Any]], times: dict[str, list[float]]) -> None:
    names = list(named)
    print("\n" + "".ljust(28) + "".join(n.rjust(22) for n in names))
    row = "accuracy".ljust(28)
    for n in names:
        s = named[n]
        row += f"{s['correct']}/{s['total']} = {s['correct'] / s['total']:.1%}".rjust(22)
    print(row)
    for lang in ("zh", "en"):
        print(f"  {lang}".ljust(28) + "".join(
            f"{named[n]['langs'][lang][0]}/{named[n]['langs'][lang][1]} = "
            f"{named[n]['langs'][lang][0] / max(1, named[n]['langs'][lang][1]):.1%}".rjust(22) for n in names))
    for route in ROUTES:
        print(f"{route} precision / recall".ljust(28) + "".join(
            f"{_pct(named[n]['per_route'][route][0])} / {_pct(named[n]['per_route'][route][1])}".rjust(22)
            for n in names))
    print("explicit request → bot".ljust(28) + "".join(str(named[n]["explicit_bot"]).rjust(22) for n in names))
    print("labelled human → bot".ljust(28) + "".join(str(named[n]["human_to_bot"]).rjust(22) for n in names))
    print("routing ms/turn p50 / p95".ljust(28) + "".join(
        f"{sorted(times[n])[len(times[n]) // 2]:.2f} / {_p95(times[n]):.2f}".rjust(22) for n in names))


def print_confusion(name: str, s: dict[str, Any]) -> None:
    width = max(len(r) for r in ROUTES) + 2
    print(f"\nConfusion, {name} (rows: expected, columns: routed)")
    print("expected".ljust(width) + "".join(r[:10].rjust(12) for r in ROUTES) + "recall".rjust(10))
    for expected in ROUTES:
        row = [s["pairs"][(expected, got)] for got in ROUTES]
        print(expected.ljust(width) + "".join(str(n).rjust(12) for n in row)
              + _pct(s["per_route"][expected][1]).rjust(10))


def print_misses(name: str, results: list[Result]) -> None:
    misses = [(t, g, r) for t, g, r in results if g != t["route"]]
    if not misses:
        return
    print(f"\nMisses, {name} (expected → routed | intent confidence | sentiment | why)")
    for turn, got, record in misses:
        sentiment = record.get("sentiment") or {}
        text = turn["say"] if isinstance(turn["say"], str) else " / ".join(turn["say"])
        mood = f"{sentiment.get('label', '-')}/{sentiment.get('intensity', '-')}"
        print(f"  [{turn['lang']}] {turn['route']} → {got} | {record.get('intent')} {record.get('confidence'):.2f}"
              f" | {mood} | {str(record.get('why'))[:150]} | {text[:50]}")


async def main_async(args: argparse.Namespace) -> int:
    routing_file = Path(args.routing)
    config = load_routing(routing_file)
    turns = load_turns(Path(args.turns))
    started = time.monotonic()
    agent = load_agent(Path(args.model))
    print(f"model {args.model} loaded in {time.monotonic() - started:.1f} s; {len(turns)} labelled snippets")
    replayed = await replay_all(agent, turns, config)
    routers: dict[str, Callable[[Replayed], RouteDecision]] = {
        "cascade": lambda r: decide(r.signals, config, now=r.at)}
    path = Path(args.tree) if args.tree else tree_path(config, routing_file)
    try:
        tree = load_tree(path) if path else None
    except TreeError as exc:
        print(f"no tree compared: {exc}")
        tree = None
    if tree is not None:
        print(f"tree {path} ({tree.digest[:12]}, depth {tree.trained.get('depth')}, trained on "
              f"{tree.trained.get('turns')}, {tree.trained.get('rows')} turns)")
        routers["tree"] = lambda r: decide_with_tree(r.signals, r.context, config, tree, now=r.at)
    outcomes = {name: run_router(replayed, route) for name, route in routers.items()}
    named = {name: summary(results) for name, (results, _) in outcomes.items()}
    print_side_by_side(named, {name: t for name, (_, t) in outcomes.items()})
    for name in named:
        print_confusion(name, named[name])
    for name, (results, _) in outcomes.items():
        if name == "tree" or args.misses:
            print_misses(name, results)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "kefu.tar.gz"))
    parser.add_argument("--turns", default=str(ROOT / "data" / "routing_eval" / "turns.yml"))
    parser.add_argument("--routing", default=str(ROOT / "data" / "routing.yml"))
    parser.add_argument("--tree", default=None, help="tree JSON (default: tree.file of the routing file)")
    parser.add_argument("--misses", action="store_true", help="also list the cascade's misses")
    args = parser.parse_args()
    if not Path(args.model).is_file():
        raise SystemExit(f"no model at {args.model}: run `make model` first")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
