"""The report's Matplotlib charts (PNG) with Chinese + English labels in the bundled CJK font."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from analytics.fonts import configure_matplotlib, missing_glyphs


@dataclass
class Chart:
    file: str
    title: str
    texts: list[str]  # every text drawn on the figure (titles, ticks, legends): checked for glyphs


def _bar(ax, labels: list[str], values: list[float], color: str = "#3b7dd8") -> None:
    ax.bar(range(len(values)), values, color=color)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, rotation=30, ha="right")


def _volume(ax, m: Mapping[str, pd.DataFrame]) -> None:
    v = m["volume"]
    ax.plot(v["day"], v["conversations"], marker="o", label="会话 conversations")
    ax.plot(v["day"], v["with_human"], marker="s", label="转人工 with human")
    ax.set_ylabel("数量 count")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)


def _intents(ax, m: Mapping[str, pd.DataFrame]) -> None:
    top = m["intents"].head(15)
    _bar(ax, list(top["intent"]), list(top["count"]))
    ax.set_ylabel("用户消息 user turns")


def _csat(ax, m: Mapping[str, pd.DataFrame]) -> None:
    c = m["csat"].loc[m["csat"]["rating"] != "all"]
    _bar(ax, [f"{r} 分" for r in c["rating"]], list(c["count"]), color="#2ca02c")
    ax.set_ylabel("评价数 ratings")


def _escalations(ax, m: Mapping[str, pd.DataFrame]) -> None:
    e = m["escalations"]
    e = e.loc[e["by"] == "reason"]
    _bar(ax, list(e["key"]), list(e["count"]), color="#d62728")
    ax.set_ylabel("工单 tickets")


def _latency(ax, m: Mapping[str, pd.DataFrame]) -> None:
    lat = m["latency"].loc[m["latency"]["percentile"] != "count"]
    _bar(ax, list(lat["percentile"]), list(lat["seconds"].fillna(0)), color="#9467bd")
    ax.set_ylabel("秒 seconds")


def _coverage(ax, m: Mapping[str, pd.DataFrame]) -> None:
    c = m["coverage"]
    _bar(ax, list(c["source"]), list(c["share"] * 100), color="#8c564b")
    ax.set_ylabel("占比 % share")


def _sentiment(ax, m: Mapping[str, pd.DataFrame]) -> None:
    s = m["sentiment_trend"]
    ax.plot(s["day"], s["mean"], marker="o", color="#ff7f0e")
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.set_ylabel("平均情绪 mean score (−1…1)")
    ax.tick_params(axis="x", rotation=30)


CHARTS: list[tuple[str, str, Callable]] = [
    ("volume.png", "每日会话量与转人工", _volume),
    ("intents.png", "意图分布（前15）", _intents),
    ("csat.png", "客户满意度评分分布", _csat),
    ("escalations.png", "转人工原因", _escalations),
    ("latency.png", "机器人响应时间分位数", _latency),
    ("coverage.png", "知识覆盖：答案来源", _coverage),
    ("sentiment.png", "情绪趋势", _sentiment),
]


def draw_all(metrics: Mapping[str, pd.DataFrame], out_dir: Path, dpi: int = 100) -> list[Chart]:
    """Write one PNG per chart into `out_dir`; empty data gives an empty but labelled chart."""
    configure_matplotlib()
    import matplotlib.pyplot as plt  # lazy: pyplot only after configure_matplotlib() chose the Agg backend
    from matplotlib.text import Text  # lazy: (same reason)

    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    for file, title, draw in CHARTS:
        fig, ax = plt.subplots(figsize=(8, 4.2))
        try:
            draw(ax, metrics)
            ax.set_title(title)
            fig.tight_layout()
            fig.canvas.draw()  # materialise tick labels so they can be checked
            texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
            fig.savefig(out_dir / file, dpi=dpi)
        finally:
            plt.close(fig)
        charts.append(Chart(file, title, texts))
    return charts


def chart_missing_glyphs(charts: list[Chart]) -> set[str]:
    return missing_glyphs(text for chart in charts for text in chart.texts)
