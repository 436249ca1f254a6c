"""`kefu report --since 7d --out report/`: the service report of the last period."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from kefu.config import Settings
from kefu.errors import BadInput


def _time(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO date/time, got {value[:40]!r}") from exc


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write the service report (HTML, PNG charts, CSVs, summary)")
    p.add_argument("--since", default="7d", help="period length before --until: 7d, 24h, 30m (default 7d)")
    p.add_argument("--until", type=_time, default=None, help="end of the period (ISO time; default now)")
    p.add_argument("--out", type=Path, default=Path("report"), help="output directory (default report/)")
    p.add_argument("--fcr-window-days", type=float, default=7.0, help="FCR repeat window in days (default 7)")
    p.add_argument("--no-compare", action="store_true", help="skip the before/after comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.database import tracker_database  # lazy: pandas/matplotlib load only for a report,
    from analytics.loader import Period, parse_since  # lazy: not when `kefu --help` builds the parser
    from analytics.report import build_report  # lazy: (same reason)

    if not 0 < args.fcr_window_days <= 365:
        raise BadInput("--fcr-window-days must be in (0, 365]")
    end = args.until if args.until is not None else time.time()
    period = Period(end - parse_since(args.since), end)
    with tracker_database(settings) as url:
        result = build_report(url, period, args.out, compare=not args.no_compare, progress=not args.no_progress,
                              fcr_window_days=args.fcr_window_days)
    print((result.out_dir / "summary.txt").read_text(encoding="utf-8"), end="")
    print(f"report: {result.events} events in {result.seconds:.1f} s → {result.out_dir / 'index.html'}")
    return 0
