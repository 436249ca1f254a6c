"""`kefu report`: metrics of a period → HTML page + PNG charts + one CSV per metric + summary.txt,
with a before/after comparison against the previous period of the same length."""

from __future__ import annotations

import html
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Optional

import pandas as pd
import yaml

from analytics import metrics as m
from analytics.charts import Chart, chart_missing_glyphs, draw_all
from analytics.conversations import build_tables
from analytics.loader import Dataset, Period, count_events, load_dataset
from kefu.config import PROJECT_ROOT
from kefu.errors import BadInput

log = logging.getLogger(__name__)

NLU_DIR = PROJECT_ROOT / "rasa_project" / "data" / "nlu"

LABELS = {
    "conversations": "会话数 conversations",
    "automation_rate": "自动化率 automation rate",
    "escalation_rate": "转人工率 escalation rate",
    "aht_bot_only_s": "平均处理时长·机器人 AHT bot-only (s)",
    "aht_with_human_s": "平均处理时长·人工 AHT with human (s)",
    "fcr": "首次解决率 FCR",
    "csat_mean": "满意度均分 CSAT mean",
    "csat_response_rate": "评价率 CSAT response rate",
    "resolution_accuracy": "解决准确率 resolution accuracy",
    "fallback_rate": "兜底率 fallback rate",
    "latency_p50_s": "响应时间 p50 (s)",
    "latency_p95_s": "响应时间 p95 (s)",
}


def default_intent_groups(nlu_dir: Path = NLU_DIR) -> dict[str, str]:
    """Intent → group from the NLU file names (`banking_zh.yml` → banking)."""
    groups: dict[str, str] = {}
    for path in sorted(nlu_dir.glob("*.yml")):
        group = path.stem.rsplit("_", 1)[0]
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in doc.get("nlu") or []:
            if isinstance(item, dict) and item.get("intent"):
                groups.setdefault(str(item["intent"]), group)
    return groups


@dataclass
class ReportResult:
    out_dir: Path
    summary: dict[str, float]
    previous: Optional[dict[str, float]]
    charts: list[Chart]
    events: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _progress_bar(url: str, period: Period, enabled: bool):  # -> (callback, closer)
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm  # lazy: optional (not in requirements.txt), only for the progress bar

    bar = tqdm(total=count_events(url, period), unit="ev", unit_scale=True, desc="loading events", file=sys.stderr)
    return bar.update, bar.close


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def comparison(now: Mapping[str, float], before: Optional[Mapping[str, float]]) -> pd.DataFrame:
    rows = []
    for key, label in LABELS.items():
        b = before.get(key, math.nan) if before else math.nan
        rows.append({"metric": key, "label": label, "before": b, "after": now[key], "delta": now[key] - b})
    return pd.DataFrame(rows)


def summary_text(period: Period, cmp: pd.DataFrame, notes: list[str]) -> str:
    fmt = "%Y-%m-%d %H:%M"
    lines = [f"Kefu service report {datetime.fromtimestamp(period.start, timezone.utc).strftime(fmt)} – "
             f"{datetime.fromtimestamp(period.end, timezone.utc).strftime(fmt)} UTC"]
    for row in cmp.itertuples():
        delta = "" if math.isnan(row.before) else f" (before {_fmt(row.before)}, Δ {_fmt(row.delta)})"
        lines.append(f"- {row.label}: {_fmt(row.after)}{delta}")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_html(out: Path, period: Period, cmp: pd.DataFrame, charts: list[Chart], csvs: list[str],
               notes: list[str]) -> Path:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(r.label)}</td><td>{_fmt(r.before)}</td><td>{_fmt(r.after)}</td><td>{_fmt(r.delta)}</td></tr>"
        for r in cmp.itertuples()
    )
    imgs = "".join(f'<figure><img src="{esc(c.file)}" alt="{esc(c.title)}"><figcaption>{esc(c.title)}'
                   "</figcaption></figure>" for c in charts)
    links = " · ".join(f'<a href="csv/{esc(n)}">{esc(n)}</a>' for n in csvs)
    start = datetime.fromtimestamp(period.start, timezone.utc).isoformat(timespec="minutes")
    end = datetime.fromtimestamp(period.end, timezone.utc).isoformat(timespec="minutes")
    note_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>Kefu 服务报告</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:8px}}img{{max-width:520px}}</style></head><body>
<h1>Kefu 服务报告 / service report</h1><p>{esc(start)} – {esc(end)}</p>
<table><tr><th>指标 metric</th><th>上期 before</th><th>本期 after</th><th>Δ</th></tr>{rows}</table>
<ul>{note_html}</ul>{imgs}<p>CSV: {links}</p></body></html>"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def build_report(url: str, period: Period, out_dir: Path, *, groups: Optional[Mapping[str, str]] = None,
                 compare: bool = True, progress: bool = False, fcr_window_days: float = m.FCR_WINDOW_DAYS,
                 chunk_rows: int = 250_000) -> ReportResult:
    """Load, compute, draw and write everything; returns the headline figures."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir} exists and is not a directory")
    groups = dict(groups) if groups is not None else default_intent_groups()
    update, close = _progress_bar(url, period, progress)
    try:
        data = load_dataset(url, period, progress=update, chunk_rows=chunk_rows)
    finally:
        close()
    before: Optional[Dataset] = load_dataset(url, period.previous(), chunk_rows=chunk_rows) if compare else None
    before_tables = build_tables(before.events) if before is not None else None
    tables = build_tables(data.events)
    now = m.compute_all(data, groups, fcr_window_days=fcr_window_days, previous=before_tables, tables=tables)
    prev_summary = None
    if before is not None and before_tables is not None and len(before_tables.turns):
        prev_summary = m.summary(m.compute_all(before, groups, fcr_window_days=fcr_window_days, tables=before_tables))
    summary = m.summary(now)
    cmp = comparison(summary, prev_summary)
    csv_dir = out_dir / "csv"
    csv_dir.mkdir(parents=True, exist_ok=True)
    csvs = []
    for name, frame in {**now, "comparison": cmp}.items():
        frame.to_csv(csv_dir / f"{name}.csv", index=False)
        csvs.append(f"{name}.csv")
    charts = draw_all(now, out_dir)
    notes = list(data.notes)
    missing = chart_missing_glyphs(charts)
    if missing:
        notes.append(f"characters without a glyph in the chart font: {''.join(sorted(missing))}")
    write_html(out_dir, period, cmp, charts, csvs, notes)
    (out_dir / "summary.txt").write_text(summary_text(period, cmp, notes), encoding="utf-8")
    return ReportResult(out_dir, summary, prev_summary, charts, len(data.events), time.perf_counter() - started,
                        notes)
