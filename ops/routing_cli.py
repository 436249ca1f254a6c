"""`kefu routing train | show | approve | reject`: the learned routing tree's life cycle.

- `train` replays the labelled training turns (data/routing_train/turns.yml, never the evaluation
  set) through the trained model, builds the feature table, picks the depth by stratified
  cross-validation (per-fold accuracy printed), fits on all turns, writes the tree JSON
  (data/routing_tree.json, next to routing.yml: versioned with the approval that names its
  digest), prints the rules and writes a PNG (models/routing_tree.png);
- `show` prints the rules and whether the tree routes live;
- `approve --by NAME --digest SHA` records the approval in routing.yml (the digest must be the
  tree file's: what was reviewed is what goes live); `reject` removes it (the cascade routes).
A new training run changes the digest, so a retrained tree never goes live unapproved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from kefu.config import PROJECT_ROOT, Settings, load_settings
from kefu.errors import ConfigError
from kefu.routing.features import FEATURES, as_vector, build_row
from kefu.routing.router import approved_tree, tree_path
from kefu.routing.settings import PIN_TARGETS, load_routing, parse_routing
from kefu.routing.tree import digest_of, dumps, load_tree, parse_tree, rules_text

TRAIN_TURNS = PROJECT_ROOT / "data" / "routing_train" / "turns.yml"
EVAL_TURNS = PROJECT_ROOT / "data" / "routing_eval" / "turns.yml"
DEFAULT_PNG = PROJECT_ROOT / "models" / "routing_tree.png"
# the replayed feature table, reused while the model, the turns and the feature list are unchanged
TABLE = PROJECT_ROOT / "models" / "routing_train_table.json"
_APPROVAL = re.compile(r"^(  approval:).*$", re.M)
_PINS = re.compile(r"^(  pins:).*$", re.M)
_ROUTER = re.compile(r"^router:.*$", re.M)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("routing", help="train, show, approve or reject the learned routing tree")
    sub = p.add_subparsers(dest="routing_command", required=True)
    train = sub.add_parser("train", help="fit the routing tree on the labelled training turns")
    train.add_argument("--turns", default=str(TRAIN_TURNS))
    train.add_argument("--model", default=None, help="model archive (default models/kefu.tar.gz)")
    train.add_argument("--out", default=None, help="tree JSON (default: tree.file of routing.yml)")
    train.add_argument("--png", default=str(DEFAULT_PNG))
    train.add_argument("--folds", type=int, default=5)
    train.add_argument("--fresh", action="store_true", help="replay the turns even if the cached table matches")
    sub.add_parser("show", help="print the tree's rules and whether it routes live")
    approve = sub.add_parser("approve", help="let the reviewed tree route live (records who, when, digest)")
    approve.add_argument("--by", required=True)
    approve.add_argument("--digest", required=True, help="the tree file's sha256 as `kefu routing show` prints it")
    approve.add_argument("--activate", action="store_true", help="also set router: tree")
    reject = sub.add_parser("reject", help="remove the approval and route with the cascade")
    reject.add_argument("--by", required=True)
    pin = sub.add_parser("pin", help="send every turn reaching a subtree to one route, or back to the cascade")
    pin.add_argument("--node", type=int, required=True, help="node id as `kefu routing show` prints it")
    pin.add_argument("--route", required=True, choices=PIN_TARGETS)
    pin.add_argument("--by", required=True)
    unpin = sub.add_parser("unpin", help="let the tree decide a pinned subtree again")
    unpin.add_argument("--node", type=int, required=True)
    unpin.add_argument("--by", required=True)


def _routing_file(settings: Optional[Settings]) -> Path:
    return (settings or load_settings()).routing_file


def _rewrite(routing_file: Path, approval: str, router: Optional[str]) -> None:
    """Replace the approval line (and the router line) keeping the designers' comments; validated first."""
    text = routing_file.read_text(encoding="utf-8")
    if not _APPROVAL.search(text):
        raise ConfigError(f"{routing_file}: no `  approval:` line under tree: to record the decision in")
    text = _APPROVAL.sub(lambda m: f"{m.group(1)} {approval}", text, count=1)
    if router is not None:
        text = _ROUTER.sub(f"router: {router}", text, count=1)
    import yaml

    parse_routing(yaml.safe_load(text))  # never write a routing file the servers would refuse
    tmp = routing_file.with_suffix(".yml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(routing_file)


def approve(routing_file: Path, by: str, digest: str, activate: bool) -> str:
    config = load_routing(routing_file)
    path = tree_path(config, routing_file)
    if path is None:
        raise ConfigError(f"{routing_file} names no tree.file")
    tree = load_tree(path)
    if len(digest) < 12 or not tree.digest.startswith(digest.lower()):
        raise ConfigError(f"digest {digest!r} is not {path}'s ({tree.digest}): review the current tree first")
    if not re.fullmatch(r"[\w .@-]{1,80}", by):
        raise ConfigError("--by must be a name (letters, digits, space, . @ -; at most 80)")
    at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    _rewrite(routing_file, f'{{by: "{by}", at: "{at}", digest: {tree.digest}}}', "tree" if activate else None)
    return tree.digest


def reject(routing_file: Path) -> None:
    _rewrite(routing_file, "null", "cascade")


def set_pin(routing_file: Path, node: int, target: Optional[str]) -> dict[int, str]:
    """Pin (target) or unpin (None) a node of the configured tree; rewrites only the pins line."""
    config = load_routing(routing_file)
    path = tree_path(config, routing_file)
    if path is None:
        raise ConfigError(f"{routing_file} names no tree.file")
    tree = load_tree(path)
    if not 0 <= node < len(tree.feature):
        raise ConfigError(f"node {node} is not in the tree (0-{len(tree.feature) - 1})")
    if target is not None and target not in PIN_TARGETS:
        raise ConfigError(f"a pin sends turns to one of {', '.join(PIN_TARGETS)}")
    pins = dict(config.tree.pins)
    if target is None:
        pins.pop(node, None)
    else:
        pins[node] = target
    text = routing_file.read_text(encoding="utf-8")
    if not _PINS.search(text):
        raise ConfigError(f"{routing_file}: no `  pins:` line under tree: to record the pin in")
    line = "{" + ", ".join(f"{k}: {v}" for k, v in sorted(pins.items())) + "}"
    text = _PINS.sub(lambda m: f"{m.group(1)} {line}", text, count=1)
    import yaml

    parse_routing(yaml.safe_load(text))
    tmp = routing_file.with_suffix(".yml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(routing_file)
    return pins


def show(routing_file: Path) -> int:
    config = load_routing(routing_file)
    path = tree_path(config, routing_file)
    if path is None:
        print(f"{routing_file} names no tree.file; router: {config.router}")
        return 0
    tree = load_tree(path)
    live, why = approved_tree(config, routing_file)
    print(f"tree {path}\ndigest {tree.digest}\nrouter: {config.router}; live: {'yes' if live else 'no'} ({why})")
    print(rules_text(tree), end="")
    return 0


def _table_key(model: Path, turns: Path, routing_file: Path) -> str:
    """What the cached table depends on: the model, the turns, the routing file and the feature list."""
    parts = [digest_of(p.read_bytes()) for p in (model, turns, routing_file)]
    return digest_of(json.dumps([parts, list(FEATURES)]).encode())


async def _table(args: argparse.Namespace, routing_file: Path) -> tuple[list[list[float]], list[str], list[str]]:
    from ops.routing_replay import load_agent, load_turns, replay_all

    config = load_routing(routing_file)
    turns = load_turns(Path(args.turns))
    if Path(args.turns).resolve() == EVAL_TURNS.resolve():
        raise ConfigError("the evaluation set is for evaluation only: train on data/routing_train/turns.yml")
    model = Path(args.model or PROJECT_ROOT / "models" / "kefu.tar.gz")
    key = _table_key(model, Path(args.turns), routing_file)
    if not args.fresh and TABLE.is_file():
        cached = json.loads(TABLE.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            print(f"reusing the replayed feature table {TABLE} (model, turns and features unchanged)")
            return cached["rows"], cached["labels"], cached["langs"]
    started = time.monotonic()
    agent = load_agent(model)
    print(f"model loaded in {time.monotonic() - started:.1f} s; replaying {len(turns)} training turns")
    replayed = await replay_all(agent, turns, config)
    rows = [as_vector(build_row(r.signals, r.context, config)) for r in replayed]
    labels, langs = [r.label for r in replayed], [r.turn["lang"] for r in replayed]
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(json.dumps({"key": key, "rows": rows, "labels": labels, "langs": langs}), encoding="utf-8")
    return rows, labels, langs


def train(args: argparse.Namespace, routing_file: Path) -> int:
    from kefu.routing.treefit import MIN_LEAVES, cross_validate, draw_tree, fit_tree

    rows, labels, langs = asyncio.run(_table(args, routing_file))
    results = cross_validate(rows, labels, folds=args.folds, min_leaves=MIN_LEAVES)
    print(f"\nCross-validation on the training turns ({args.folds} stratified folds)")
    print("depth  min_leaf  " + "  ".join(f"fold{i + 1}" for i in range(args.folds)) + "   mean")
    for r in results:
        print(f"{r.depth:>5}  {r.min_leaf:>8}  " + "  ".join(f"{s:5.1%}" for s in r.folds) + f"  {r.mean:5.1%}")
    best = max(results, key=lambda r: (round(r.mean, 3), -r.depth, r.min_leaf))
    print(f"chosen depth {best.depth}, min_samples_leaf {best.min_leaf} (best mean; ties → shallower, larger leaves)")
    doc = fit_tree(rows, labels, best.depth, min_leaf=best.min_leaf, trained={
        "turns": str(Path(args.turns).resolve().relative_to(PROJECT_ROOT)) if Path(args.turns).resolve()
        .is_relative_to(PROJECT_ROOT) else str(args.turns),
        "zh": langs.count("zh"), "en": langs.count("en"),
        "cv_mean": round(best.mean, 4), "cv_folds": [round(s, 4) for s in best.folds],
        "at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()})
    data = dumps(doc)
    config = load_routing(routing_file)
    out = Path(args.out) if args.out else tree_path(config, routing_file)
    if out is None:
        raise ConfigError(f"{routing_file} names no tree.file and no --out was given")
    out.write_bytes(data)
    tree = parse_tree(data, str(out))
    right = sum(tree.predict(dict(zip(doc["features"], r, strict=True))).route == y
                for r, y in zip(rows, labels, strict=True))
    print(f"\nwrote {out} ({len(data)} bytes), digest {digest_of(data)}")
    print(f"training accuracy {right}/{len(rows)} = {right / len(rows):.1%} (optimistic; see the CV above)")
    print(rules_text(tree), end="")
    print(f"picture: {draw_tree(tree, Path(args.png))}")
    print(f"not live until approved: kefu routing approve --by NAME --digest {tree.digest[:16]} [--activate]")
    return 0


def main(args: argparse.Namespace, settings: Optional[Settings] = None) -> int:
    routing_file = _routing_file(settings)
    command: Any = args.routing_command
    if command == "train":
        return train(args, routing_file)
    if command == "show":
        return show(routing_file)
    if command == "approve":
        digest = approve(routing_file, args.by, args.digest, args.activate)
        print(f"approved tree {digest} by {args.by} in {routing_file}")
        return 0
    if command in ("pin", "unpin"):
        pins = set_pin(routing_file, args.node, args.route if command == "pin" else None)
        print(f"{command} node {args.node} by {args.by}; pins now {pins} in {routing_file}")
        return 0
    reject(routing_file)
    print(f"approval removed by {args.by}; router: cascade in {routing_file}")
    return 0
