"""Live figures for the console's supervisors, computed by the same metric code as the report.

The console asks for a recent window (`24h`, `30m`, `today`, ...); this loads that window from
the tracker store and the ticket table with `analytics.loader` and runs the functions of
`analytics.metrics` on it, so a supervisor's "automation rate" is exactly the report's.
Synchronous pandas: the console calls `live_figures` in a worker thread. The console does not
import analytics: its entry point (`ops/console.py`) hands it `ReportFigures()`.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Optional

from analytics import metrics as m
from analytics.conversations import build_tables
from analytics.loader import Period, load_dataset
from kefu.errors import BadInput

DEFAULT_WINDOW = "24h"
MAX_WINDOW_S = 7 * 86400  # a live view, not a report: longer windows belong to `kefu report`
_WINDOW_RE = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(value: Optional[str], now: float) -> tuple[str, Period]:
    """`today` (since UTC midnight) or `<n>s|m|h|d` up to 7 days → (canonical name, period ending now).

    None means the default; anything else that does not match is refused with a clear reason.
    """
    raw = DEFAULT_WINDOW if value is None else value
    text = raw.strip().lower() if isinstance(raw, str) else ""
    if text == "today":
        start = now // 86400 * 86400
        return "today", Period(start, max(now, start + 1.0))
    match = _WINDOW_RE.fullmatch(text)
    if not match:
        shown = raw[:40] if isinstance(raw, str) else type(raw).__name__
        raise BadInput(f"window must be 'today' or a positive duration like 30m, 24h or 7d, got {shown!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_WINDOW_S:
        raise BadInput(f"window must be at most 7d, got {text!r}")
    return f"{match.group(1)}{match.group(2)}", Period(now - seconds, now)


def _num(value: Any, digits: int = 4) -> Optional[float]:
    """JSON-safe float: NaN (no data) becomes None."""
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def live_figures(url: str, window: Optional[str] = None, now: Optional[float] = None) -> dict[str, Any]:
    """Headline figures of the window: automation/escalation, escalations by queue, fallback rate,
    AHT bot-only / with a human, CSAT mean and response rate (definitions: `analytics.metrics`)."""
    now = time.time() if now is None else now
    name, period = parse_window(window, now)
    data = load_dataset(url, period)
    tables = build_tables(data.events)
    conv = m.conversations_with_tickets(tables, data.tickets)
    auto = m.automation(conv).iloc[0]
    aht = m.aht(conv, data.tickets, period).set_index("segment")
    csat_all = m.csat(data.tickets, period).set_index("rating").loc["all"]
    fallback = m.fallback_rate(tables).iloc[0]
    escalations = m.escalations(data.tickets, period, len(conv))
    by_queue = escalations.loc[escalations["by"] == "queue"]
    return {
        "window": name,
        "start": period.start,
        "end": period.end,
        "conversations": int(auto["conversations"]),
        "with_human": int(auto["with_human"]),
        "automation_rate": _num(auto["automation_rate"]),
        "escalation_rate": _num(auto["escalation_rate"]),
        "escalations_by_queue": [
            {"queue": str(row.key), "count": int(row.count), "rate": _num(row.rate)} for row in by_queue.itertuples()
        ],
        "turns": int(fallback["turns"]),
        "fallback_rate": _num(fallback["fallback_rate"]),
        "aht_bot_s": _num(aht.loc["bot_only", "aht_s"], 1),
        "aht_human_s": _num(aht.loc["with_human", "aht_s"], 1),
        "csat_mean": _num(csat_all["mean"], 2),
        "csat_response_rate": _num(csat_all["response_rate"]),
        "closed": int(csat_all["closed"]),
        "skipped_rows": data.skipped_rows,
    }


class ReportFigures:
    """The console's live-metrics provider (`handoff.console.live.LiveMetrics`): the report's figures."""

    def window_name(self, window: Optional[str]) -> str:
        """The canonical name of a window (`24h` for None); BadInput for anything else."""
        return parse_window(window, time.time())[0]

    def figures(self, url: str, window: str) -> dict[str, Any]:
        """The figures of a canonical window (synchronous: run it in a worker thread)."""
        return live_figures(url, window)
