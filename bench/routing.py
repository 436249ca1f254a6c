"""Routing accuracy on the labelled set data/routing_eval/turns.yml (zh + en).

Each snippet runs through the real trained model (`Agent.parse_message`: intent, confidence,
ranking, sentiment), the same frustration rule as the action server (kefu.emotion) over the
snippet's turns, and `kefu.routing.decide` with the production data/routing.yml. Prints
accuracy overall and per language, the confusion by route, and every miss.

    python bench/routing.py [--model models/kefu.tar.gz] [--turns data/routing_eval/turns.yml]

The snippets were written to label routes, not held out from NLU training: some short
requests ("转人工") are close to training examples, so NLU confidence here is optimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasa.utils.log_utils import configure_structlog  # noqa: E402

from kefu.emotion import update_frustration  # noqa: E402
from kefu.routing.decision import ROUTES, TurnSignals, decide, is_unclear  # noqa: E402
from kefu.routing.settings import load_routing  # noqa: E402

DEFAULT_AT = "2026-11-25T11:00:00+08:00"  # a Wednesday morning: every queue open


def load_turns(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    turns = doc["turns"]
    for number, turn in enumerate(turns, 1):
        if turn.get("route") not in ROUTES or turn.get("lang") not in ("zh", "en") or not turn.get("say"):
            raise SystemExit(f"{path}: turn {number} needs say, lang (zh|en) and route ({'|'.join(ROUTES)})")
    return turns


async def route_snippet(agent: Any, turn: dict[str, Any], config: Any) -> tuple[str, dict]:
    messages = turn["say"] if isinstance(turn["say"], list) else [turn["say"]]
    frustration, unclear = 0.0, 0
    parse: dict = {}
    for index, text in enumerate(messages):
        parse = await agent.parse_message(text)
        frustration = update_frustration(frustration, parse.get("sentiment"))
        if index < len(messages) - 1:
            unclear = unclear + 1 if is_unclear(TurnSignals.from_parse(parse, {}), config) else 0
    signals = TurnSignals.from_parse(parse, {"frustration": frustration}, unclear_before=unclear)
    decision = decide(signals, config, now=datetime.fromisoformat(turn.get("at", DEFAULT_AT)))
    return decision.route, decision.record


def print_report(results: list[tuple[dict, str, dict]]) -> None:
    total = len(results)
    correct = sum(1 for turn, got, _ in results if got == turn["route"])
    print(f"\nRouting accuracy: {correct}/{total} = {correct / total:.1%}")
    for lang in ("zh", "en"):
        subset = [(t, g) for t, g, _ in results if t["lang"] == lang]
        ok = sum(1 for t, g in subset if g == t["route"])
        print(f"  {lang}: {ok}/{len(subset)} = {ok / max(1, len(subset)):.1%}")
    pairs = Counter((turn["route"], got) for turn, got, _ in results)
    width = max(len(r) for r in ROUTES) + 2
    print("\nConfusion (rows: expected, columns: routed)")
    print("expected".ljust(width) + "".join(r[:10].rjust(12) for r in ROUTES) + "recall".rjust(10))
    for expected in ROUTES:
        row = [pairs[(expected, got)] for got in ROUTES]
        support = sum(row)
        recall = f"{pairs[(expected, expected)] / support:.0%}" if support else "-"
        print(expected.ljust(width) + "".join(str(n).rjust(12) for n in row) + recall.rjust(10))
    misses = [(t, g, r) for t, g, r in results if g != t["route"]]
    if misses:
        print("\nMisses (expected → routed | intent confidence | sentiment | why)")
        for turn, got, record in misses:
            sentiment = record.get("sentiment") or {}
            text = turn["say"] if isinstance(turn["say"], str) else " / ".join(turn["say"])
            mood = f"{sentiment.get('label', '-')}/{sentiment.get('intensity', '-')}"
            print(f"  [{turn['lang']}] {turn['route']} → {got} | {record.get('intent')} {record.get('confidence'):.2f}"
                  f" | {mood} | {record.get('why')} | {text[:60]}")


async def main_async(args: argparse.Namespace) -> int:
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rasa.core.agent import Agent  # lazy: TensorFlow, after the environment above is set

    configure_structlog(logging.WARNING)  # the per-message parse debug lines would drown the table
    logging.getLogger("rasa").setLevel(logging.WARNING)

    config = load_routing(Path(args.routing))
    turns = load_turns(Path(args.turns))
    started = time.monotonic()
    agent = Agent.load(str(args.model))
    print(f"model {args.model} loaded in {time.monotonic() - started:.1f} s; {len(turns)} labelled snippets")
    results = []
    started = time.monotonic()
    for turn in turns:
        route, record = await route_snippet(agent, turn, config)
        results.append((turn, route, record))
    print(f"routed in {time.monotonic() - started:.1f} s")
    print_report(results)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "kefu.tar.gz"))
    parser.add_argument("--turns", default=str(ROOT / "data" / "routing_eval" / "turns.yml"))
    parser.add_argument("--routing", default=str(ROOT / "data" / "routing.yml"))
    args = parser.parse_args()
    if not Path(args.model).is_file():
        raise SystemExit(f"no model at {args.model}: run `make model` first")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
