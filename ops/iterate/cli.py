"""`kefu iterate`: run the model iteration, review proposed NLU examples, show the registry, roll back.

    kefu iterate [run] [--registry DIR] [--config C --data D --eval E]
    kefu iterate review [--accept ID ...] [--reject ID ...] [--accept-all] [--accept ID --intent NAME]

A proposal from a misrouted handoff or a knowledge-review item may carry only candidate intents:
it is accepted with `--accept ID --intent NAME` (a domain intent); `--accept-all` leaves it pending.
    kefu iterate status
    kefu iterate rollback [--to VERSION]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analytics.database import tracker_database
from kefu.config import Settings
from kefu.domain import domain_intents
from kefu.errors import BadInput
from ops.iterate.loop import IterationConfig, project_config, rollback, run_iteration
from ops.iterate.proposals import Proposals
from ops.iterate.registry import Registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("iterate", help="monthly model iteration: run, review proposals, status, rollback")
    p.add_argument("action", nargs="?", default="run", choices=("run", "review", "status", "rollback"))
    p.add_argument("--registry", type=Path, help="registry directory (default models/registry)")
    p.add_argument("--config", type=Path, help="Rasa pipeline config for the candidate")
    p.add_argument("--data", type=Path, action="append", help="base NLU data (repeatable)")
    p.add_argument("--eval", type=Path, help="frozen evaluation set (never trained on)")
    p.add_argument("--threshold", type=float, default=0.5, help="auto-answer confidence threshold")
    p.add_argument("--no-collect", action="store_true", help="do not read new corrections from the database")
    p.add_argument("--accept", type=int, action="append", default=[], metavar="ID")
    p.add_argument("--reject", type=int, action="append", default=[], metavar="ID")
    p.add_argument("--accept-all", action="store_true", help="accept every pending proposal that has an intent")
    p.add_argument("--intent", help="the intent for the one --accept ID (a proposal with candidates needs it)")
    p.add_argument("--to", help="rollback target version (default: the previously promoted one)")


def _config(args: argparse.Namespace, settings: Settings) -> IterationConfig:
    cfg = project_config(settings, str(args.registry) if args.registry else None)
    if args.config:
        cfg.config = args.config
    if args.data:
        cfg.data = list(args.data)
    if args.eval:
        cfg.eval_file = args.eval
    if not 0.0 <= args.threshold <= 1.0:
        raise BadInput("--threshold must be between 0 and 1")
    cfg.threshold = args.threshold
    return cfg


def main(args: argparse.Namespace, settings: Settings) -> int:
    cfg = _config(args, settings)
    if args.action == "review":
        props = Proposals(cfg.registry)
        if args.intent is not None and (len(args.accept) != 1 or args.accept_all):
            raise BadInput("--intent goes with exactly one --accept ID")
        pending = [p for p in props.all() if p["status"] == "pending"]
        accept = [p["id"] for p in pending if p.get("intent")] if args.accept_all else args.accept
        if accept:
            allowed = domain_intents() if args.intent is not None else None
            props.decide(accept, "accepted", intent=args.intent, allowed=allowed)
        if args.reject:
            props.decide(args.reject, "rejected")
        for p in props.all():
            choose = f"  [pick: {', '.join(p['candidates'])}]" if not p.get("intent") and p.get("candidates") else ""
            print(f"#{p['id']:<4} {p['status']:9} {p.get('intent') or '?':20} {p['text']}  "
                  f"({p['source']} {p['ref']}){choose}")
        if args.accept_all and len(accept) < len(pending):
            print(f"{len(pending) - len(accept)} pending proposal(s) need an intent: --accept ID --intent NAME")
        return 0
    registry = Registry(cfg.registry)
    if args.action == "status":
        print(json.dumps(registry.state(), indent=2, ensure_ascii=False))
        return 0
    if args.action == "rollback":
        result = rollback(cfg, args.to)
        served = result["served"]
        where = f", serving {served['path']} (Rasa: {served['reload']})" if served.get("installed") else ""
        print(f"current model: {result['current']}{where}")
        return 0
    if args.no_collect:
        result = run_iteration(cfg)
    else:
        with tracker_database(settings) as url:
            result = run_iteration(cfg, url, settings.faq_url)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0
