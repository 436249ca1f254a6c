"""Markdown tables of bench/load.py: every Kefu figure beside stock's and the ratio Kefu / stock.

A ratio above 1 means Kefu's figure is the larger one: worse for latency, errors, CPU and RSS,
better for msg/s.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

# (summary key, column header, decimals)
PHASE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("msgs", "msgs", 0),
    ("msg_s", "msg/s", 1),
    ("p50", "p50 ms", 0),
    ("p95", "p95 ms", 0),
    ("p99", "p99 ms", 0),
    ("first_p50", "1st msg p50 ms", 0),
    ("errors", "errors", 0),
    ("cpu_total", "CPU % all", 0),
    ("cpu_rasa", "CPU % rasa", 0),
    ("rss_total", "RSS MiB all", 0),
    ("rss_rasa", "RSS MiB rasa", 0),
)


def ratio(kefu: Optional[float], stock: Optional[float]) -> Optional[float]:
    """kefu / stock; None when either is missing or stock is 0 (0 / 0 is 1: both clean)."""
    if kefu is None or stock is None:
        return None
    if stock == 0:
        return 1.0 if kefu == 0 else None
    return kefu / stock


def fmt(value: Optional[float], decimals: int = 0) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def fmt_ratio(value: Optional[float]) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def procs_cell(procs: Dict[str, Dict[str, float]]) -> str:
    """'rasa 95%/610, actions 12%/280, …' (CPU % of one core / peak RSS MiB), busiest first."""
    ordered = sorted(procs.items(), key=lambda kv: -kv[1].get("cpu", 0.0))
    return ", ".join(f"{name} {p['cpu']:.0f}%/{p['rss_mb']:.0f}" for name, p in ordered) or "—"


def load_label(phase: str, load: float) -> str:
    if phase == "closed":
        return f"{load:g} customers"
    if phase == "open":
        return f"{load:g} msg/s Poisson"
    return f"{load:g} turns"


def phase_rows(results: Sequence[Dict[str, Any]]) -> List[List[str]]:
    """results: dicts with channel, phase, load, target, summary, procs. Per (channel, phase, load)
    one row per target, then the ratio row when both targets ran."""
    groups: Dict[tuple, Dict[str, Dict[str, Any]]] = {}
    for res in results:
        groups.setdefault((res["channel"], res["phase"], res["load"]), {})[res["target"]] = res
    rows: List[List[str]] = []
    for (channel, phase, load), by_target in groups.items():
        label = [channel, phase, load_label(phase, load)]
        for target in ("kefu", "stock"):
            if target in by_target:
                res = by_target[target]
                cells = [fmt(res["summary"].get(key), dec) for key, _, dec in PHASE_COLUMNS]
                rows.append([*label, target, *cells, procs_cell(res.get("procs", {}))])
        if "kefu" in by_target and "stock" in by_target:
            kefu, stock = by_target["kefu"]["summary"], by_target["stock"]["summary"]
            cells = [fmt_ratio(ratio(kefu.get(key), stock.get(key))) for key, _, _ in PHASE_COLUMNS]
            rows.append([*label, "**kefu/stock**", *cells, ""])
    return rows


def phase_table(results: Sequence[Dict[str, Any]]) -> str:
    header = [
        "channel",
        "phase",
        "load",
        "target",
        *(h for _, h, _ in PHASE_COLUMNS),
        "per process: CPU % / peak RSS MiB",
    ]
    return markdown(header, phase_rows(results))


def startup_table(targets: Dict[str, Dict[str, Any]]) -> str:
    """Ready after start (model already trained) and RSS right after start."""
    header = ["target", "ready after start s", "RSS MiB rasa", "RSS MiB all servers", "per process RSS MiB"]
    rows: List[List[str]] = []
    for name in ("kefu", "stock"):
        if name in targets:
            t = targets[name]
            rss = t.get("rss_after_start", {})
            per = ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items(), key=lambda kv: -kv[1]))
            rows.append(
                [
                    name,
                    fmt(t.get("ready_s"), 1),
                    fmt(rss.get("rasa")),
                    fmt(sum(rss.values()) if rss else None),
                    per or "—",
                ]
            )
    if "kefu" in targets and "stock" in targets:
        k, s = targets["kefu"], targets["stock"]
        kr, sr = k.get("rss_after_start", {}), s.get("rss_after_start", {})
        rows.append(
            [
                "**kefu/stock**",
                fmt_ratio(ratio(k.get("ready_s"), s.get("ready_s"))),
                fmt_ratio(ratio(kr.get("rasa"), sr.get("rasa"))),
                fmt_ratio(ratio(sum(kr.values()) if kr else None, sum(sr.values()) if sr else None)),
                "",
            ]
        )
    return markdown(header, rows)


def long_rows(results: Sequence[Dict[str, Any]]) -> List[List[str]]:
    """results: dicts with channel, target, first10, last10 (medians, ms), turns, errors."""
    by_channel: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for res in results:
        by_channel.setdefault(res["channel"], {})[res["target"]] = res
    rows: List[List[str]] = []
    for channel, by_target in by_channel.items():
        for target in ("kefu", "stock"):
            if target in by_target:
                r = by_target[target]
                rows.append(
                    [
                        channel,
                        target,
                        fmt(r.get("turns")),
                        fmt(r.get("errors")),
                        fmt(r.get("first10")),
                        fmt(r.get("last10")),
                        fmt_ratio(ratio(r.get("last10"), r.get("first10"))),
                    ]
                )
        if "kefu" in by_target and "stock" in by_target:
            k, s = by_target["kefu"], by_target["stock"]
            growth_k = ratio(k.get("last10"), k.get("first10"))
            growth_s = ratio(s.get("last10"), s.get("first10"))
            rows.append(
                [
                    channel,
                    "**kefu/stock**",
                    "",
                    "",
                    fmt_ratio(ratio(k.get("first10"), s.get("first10"))),
                    fmt_ratio(ratio(k.get("last10"), s.get("last10"))),
                    fmt_ratio(ratio(growth_k, growth_s)),
                ]
            )
    return rows


def long_table(results: Sequence[Dict[str, Any]]) -> str:
    header = [
        "channel",
        "target",
        "turns",
        "errors",
        "median turns 1–10 ms",
        "median last 10 turns ms",
        "growth (last 10 / first 10)",
    ]
    return markdown(header, long_rows(results))
