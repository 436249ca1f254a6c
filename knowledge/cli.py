"""`kefu kb ...`: load, search, export the knowledge base, and the ticket → FAQ update loop.

    kefu kb load data/knowledge          validate everything, then upsert (idempotent)
    kefu kb search "白金卡年费多少"        ranked results with per-signal scores
    kefu kb export [--out DIR]           FAQ (YAML) and cases (JSONL) as stored
    kefu kb history FAQ_ID               version history of one entry
    kefu kb tickets import FILE          CSV/JSONL export of a ticket system
    kefu kb cluster [--eps 0.12]         group unanswered ticket questions (DBSCAN) into suggestions
    kefu kb review [--approve ID ...]    approve/edit/reject suggestions; approval publishes a FAQ version
    kefu kb calibrate [--out FILE]       fit the FAQ answer calibrator out-of-fold (after `kb load`)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from kefu.config import PROJECT_ROOT, Settings
from knowledge import tickets
from knowledge.cache import AnswerCache
from knowledge.calibrator import DEFAULT_CALIBRATION
from knowledge.cases import open_case_store
from knowledge.errors import BadInput, ValidationFailed
from knowledge.faq import open_faq_store
from knowledge.loader import _optional, load_seed

DEFAULT_DIR = PROJECT_ROOT / "data" / "knowledge"


def add_parser(subparsers: Any) -> None:
    kb = subparsers.add_parser("kb", help="knowledge base: load, search, export, ticket clustering and review")
    sub = kb.add_subparsers(dest="kb_command", required=True)
    load = sub.add_parser("load", help="validate and load seed content (idempotent)")
    load.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    load.add_argument("--if-changed", action="store_true", help="skip when the same content was loaded before")
    search = sub.add_parser("search", help="search the FAQ (or --cases) and show per-signal scores")
    search.add_argument("query")
    search.add_argument("--lang", choices=("zh", "en"))
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--cases", action="store_true", help="search the case library instead")
    export = sub.add_parser("export", help="write the stored FAQ and cases")
    export.add_argument("--out", type=Path, help="directory for faq/export.yml and cases/export.jsonl (default stdout)")
    history = sub.add_parser("history", help="version history of one FAQ entry")
    history.add_argument("faq_id")
    tickets = sub.add_parser("tickets", help="ticket-system exports")
    tsub = tickets.add_subparsers(dest="tickets_command", required=True)
    imp = tsub.add_parser("import", help="import a CSV or JSONL ticket export")
    imp.add_argument("file", type=Path)
    cluster = sub.add_parser("cluster", help="cluster unanswered ticket questions into FAQ suggestions")
    cluster.add_argument("--eps", type=float, default=None, help="DBSCAN radius in cosine distance")
    cluster.add_argument("--min-samples", type=int, default=None)
    cluster.add_argument("--answered-above", type=float, default=None,
                         help="tickets whose best FAQ confidence is at least this count as answered")
    review = sub.add_parser("review", help="approve, edit or reject suggestions (interactive without flags)")
    review.add_argument("--list", action="store_true", help="only list pending suggestions")
    review.add_argument("--approve", type=int, metavar="ID")
    review.add_argument("--reject", type=int, metavar="ID")
    review.add_argument("--question", help="edited question for --approve")
    review.add_argument("--answer", help="edited answer for --approve")
    calibrate = sub.add_parser("calibrate", help="fit the FAQ answer calibrator out-of-fold on the stored FAQ "
                                                 "and the paraphrase set; writes plain JSON")
    calibrate.add_argument("--paraphrases", type=Path, default=DEFAULT_DIR / "paraphrases" / "paraphrases.jsonl")
    calibrate.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION)


def _urls(settings: Settings) -> tuple[str, str]:
    if not settings.faq_url:
        raise BadInput("no knowledge-base database: set KEFU_POSTGRES_URL or KEFU_FAQ_URL (or start `kefu run`)")
    return settings.faq_url, settings.cases_url or settings.faq_url


def _optional_graph_url() -> Any:
    """Engineer B's `graph_url_for(settings)` (KEFU_GRAPH_URL or the local FalkorDB), when present."""
    return _optional("knowledge.graph", "graph_url_for")


def _cache(settings: Settings) -> Any:
    return AnswerCache(settings.redis_url)


def main(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _dispatch(args, settings)
    except ValidationFailed as exc:
        print(f"kefu kb: {len(exc.problems)} problem(s); nothing was written:", file=sys.stderr)
        for where, what in exc.problems[:200]:
            print(f"  {where}: {what}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.kb_command
    if command == "load":
        faq_url, cases_url = _urls(settings)
        graph_url_for = _optional_graph_url()
        graph_url = graph_url_for(settings) if graph_url_for else getattr(settings, "graph_url", None)
        report = load_seed(faq_url, cases_url, args.directory, graph_url=graph_url,
                           only_if_changed=args.if_changed, progress=sys.stderr.isatty(), cache=_cache(settings))
        if report.skipped:
            print(f"knowledge base already holds content {report.content_hash[:12]}; nothing to do")
        for kind, counts in report.counts.items():
            print(f"{kind}: {counts}")
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    if command == "search":
        return _search(args, settings)
    if command == "export":
        return _export(args, settings)
    if command == "history":
        store = open_faq_store(_urls(settings)[0])
        try:
            for h in store.history(args.faq_id):
                when = f"{h['changed_at']:%Y-%m-%d %H:%M}"
                print(f"v{h['version']}  {when}  {h['status']:<9} {h['note']}: {h['question']}")
        finally:
            store.close()
        return 0
    if command == "calibrate":
        from knowledge.calibration_fit import calibrate_command  # lazy: numpy fitting, off `kefu --help`

        return calibrate_command(_urls(settings)[0], args.paraphrases, args.out)
    if command == "tickets":
        return tickets.import_command(args, settings)
    if command == "cluster":
        return tickets.cluster_command(args, settings)
    return tickets.review_command(args, settings, _cache(settings))


def _search(args: argparse.Namespace, settings: Settings) -> int:
    faq_url, cases_url = _urls(settings)
    limit = max(1, min(args.limit, 50))
    if args.cases:
        store: Any = open_case_store(cases_url)
        found = store.search(args.query, args.lang, limit)
        rows = [(h.case.id, h.confidence, h.scores, h.case.question) for h in found]
    else:
        store = open_faq_store(faq_url)
        results = store.search(args.query, args.lang, limit)
        rows = [(r.entry.id, r.confidence, r.scores, r.entry.question) for r in results]
    try:
        if not rows:
            print("no results")
            return 0
        print(f"{'#':>2}  {'id':<28} {'conf':>5}  {'fts':>5} {'trgm':>5} {'vector':>6}  question")
        for i, (ref, conf, scores, question) in enumerate(rows, 1):
            cells = " ".join(f"{scores[s]:>{w}.3f}" if s in scores else f"{'-':>{w}}"
                             for s, w in (("fts", 5), ("trgm", 5), ("vector", 6)))
            print(f"{i:>2}  {ref:<28} {conf:>5.2f}  {cells}  {question}")
        return 0
    finally:
        store.close()


def _export(args: argparse.Namespace, settings: Settings) -> int:
    faq_url, cases_url = _urls(settings)
    faq_store, case_store = open_faq_store(faq_url), open_case_store(cases_url)
    try:
        faq = [{k: v for k, v in e.to_dict().items() if k not in ("version", "updated_at")} for e in faq_store.export()]
        cases = case_store.export()
    finally:
        faq_store.close()
        case_store.close()
    faq_text = yaml.safe_dump({"faq": faq}, allow_unicode=True, sort_keys=False)
    case_lines = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in cases)
    if args.out is None:
        sys.stdout.write(faq_text)
        sys.stdout.write("---\n# cases (JSONL)\n" + "".join("# " + line for line in case_lines.splitlines(True)))
        return 0
    (args.out / "faq").mkdir(parents=True, exist_ok=True)
    (args.out / "cases").mkdir(parents=True, exist_ok=True)
    (args.out / "faq" / "export.yml").write_text(faq_text, encoding="utf-8")
    (args.out / "cases" / "export.jsonl").write_text(case_lines, encoding="utf-8")
    print(f"wrote {len(faq)} FAQ entries and {len(cases)} cases under {args.out}")
    return 0
