"""bench/load.py's pure parts, no servers: percentiles, the Poisson schedule, the conversation
scripts, the summary and the Kefu / stock ratio column; the drivers against fake sessions."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _load_drive as drive  # noqa: E402
import _load_plan as plan  # noqa: E402
import _load_report as report  # noqa: E402
import load  # noqa: E402


@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 0.99, 1.0])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = [random.Random(3).uniform(1, 500) for _ in range(37)]
    assert plan.percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


def test_percentile_edges() -> None:
    assert plan.percentile([], 0.5) is None
    assert plan.percentile([42.0], 0.99) == 42.0
    assert plan.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert plan.percentile([5.0, 1.0, 3.0], 0.5) == 3.0  # unsorted input


def test_poisson_schedule_mean_rate_and_order() -> None:
    rate, duration = 20.0, 500.0
    offsets = plan.poisson_offsets(rate, duration, random.Random(11))
    assert len(offsets) == pytest.approx(rate * duration, rel=0.03)
    assert offsets == sorted(offsets) and 0 < offsets[0] and offsets[-1] < duration
    gaps = np.diff(offsets)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.03)
    assert gaps.std() == pytest.approx(1 / rate, rel=0.06)  # exponential: sd = mean
    again = plan.poisson_offsets(rate, duration, random.Random(11))
    assert again == offsets  # seeded: the same schedule for Kefu and stock


def test_poisson_schedule_bounds() -> None:
    assert plan.poisson_offsets(0, 10, random.Random(1)) == []
    assert plan.poisson_offsets(10, 0, random.Random(1)) == []
    assert len(plan.poisson_offsets(1e6, 1, random.Random(1))) <= 3 * 1e6 + 100


def test_scripts_are_well_formed() -> None:
    names = [s.name for s in plan.SCRIPTS]
    assert len(names) == len(set(names))
    for script in plan.SCRIPTS:
        assert len(script.turns) == plan.TURNS
        assert all(isinstance(t, str) and t.strip() == t and 0 < len(t) <= 200 for t in script.turns)
        assert script.lang in ("zh", "en", "mixed")
    assert {s.lang for s in plan.SCRIPTS} == {"zh", "en", "mixed"}
    handoffs = [s for s in plan.SCRIPTS if s.handoff]
    assert 1 <= len(handoffs) <= len(plan.SCRIPTS) // 3  # mostly on the bot path
    for script in handoffs:
        assert any(w in " ".join(script.turns) for w in ("人工", "real person", "human"))
    for script in plan.SCRIPTS:
        if not script.handoff:
            assert not any(w in " ".join(script.turns) for w in ("人工", "real person", "真人", "human"))
    assert plan.script_for(0) is plan.SCRIPTS[0] and plan.script_for(len(plan.SCRIPTS)) is plan.SCRIPTS[0]


def test_long_session_stays_on_the_bot_path() -> None:
    turns = plan.long_session_turns(150)
    assert len(turns) == 150 and turns[0] == plan.LONG_SESSION_CYCLE[0]
    text = " ".join(turns)
    assert not any(w in text for w in ("人工", "real person", "human", "真人", "垃圾"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text) and any(ch.isascii() and ch.isalpha() for ch in text)


def _result(latencies: List[float], errors: int = 0, started: float = 100.0) -> plan.PhaseResult:
    turns = [plan.Turn(sent=started + i * 0.1, done_ms=ms) for i, ms in enumerate(latencies)]
    turns += [plan.Turn(sent=started, error="timeout") for _ in range(errors)]
    procs = {"rasa": {"cpu": 80.0, "rss_mb": 1000.0}, "actions": {"cpu": 20.0, "rss_mb": 300.0},
             plan.CLIENT: {"cpu": 5.0, "rss_mb": 50.0}}  # fmt: skip
    return plan.PhaseResult("closed", 10, "rest", "kefu", 10.0, started, turns, procs)


def test_summarise_counts_window_errors_and_server_totals() -> None:
    result = _result([100.0] * 50, errors=2)
    result.turns.append(plan.Turn(sent=109.95, done_ms=500.0))  # answered after the window closed
    summary = plan.summarise(result)
    assert summary["msgs"] == 53 and summary["errors"] == 2
    assert summary["msg_s"] == pytest.approx(5.0)
    assert summary["p50"] == 100.0 and summary["first_p50"] is None
    assert summary["cpu_total"] == 100.0 and summary["rss_total"] == 1300.0  # the client is not a server
    assert summary["cpu_rasa"] == 80.0
    assert plan.error_kinds(result.turns) == {"timeout": 2}


def test_ratio_and_format() -> None:
    assert report.ratio(10.0, 4.0) == 2.5
    assert report.ratio(0.0, 0.0) == 1.0
    assert report.ratio(3.0, 0.0) is None and report.ratio(None, 1.0) is None
    assert report.fmt_ratio(0.284) == "0.28×" and report.fmt_ratio(None) == "—" and report.fmt_ratio(12.34) == "12.3×"


def _row(target: str, summary: Dict[str, float]) -> Dict:
    return {"target": target, "channel": "rest", "phase": "closed", "load": 10.0, "summary": summary,
            "procs": {"rasa": {"cpu": 90.0, "rss_mb": 1200.0}}}  # fmt: skip


def test_phase_table_has_a_ratio_row() -> None:
    kefu = {"msgs": 200.0, "msg_s": 7.0, "p50": 145.0, "p95": 300.0, "p99": 400.0, "errors": 0.0, "cpu_total": 150.0}
    stock = {"msgs": 700.0, "msg_s": 25.0, "p50": 29.0, "p95": 60.0, "p99": 80.0, "errors": 0.0, "cpu_total": 95.0}
    rows = report.phase_rows([_row("kefu", kefu), _row("stock", stock)])
    assert [r[3] for r in rows] == ["kefu", "stock", "**kefu/stock**"]
    header = [h for _, h, _ in report.PHASE_COLUMNS]
    ratio_row = dict(zip(header, rows[2][4:-1], strict=True))
    assert ratio_row["msg/s"] == "0.28×" and ratio_row["p50 ms"] == "5.00×" and ratio_row["errors"] == "1.00×"
    assert ratio_row["1st msg p50 ms"] == "—"  # missing on both sides
    table = report.phase_table([_row("kefu", kefu), _row("stock", stock)])
    assert table.count("\n") == 4 and "rasa 90%/1200" in table
    only = report.phase_rows([_row("kefu", kefu)])
    assert len(only) == 1  # no ratio without stock


def test_long_table_growth_and_ratio() -> None:
    rows = report.long_rows([
        {"target": "kefu", "channel": "rest", "turns": 150.0, "errors": 0.0, "first10": 150.0, "last10": 300.0},
        {"target": "stock", "channel": "rest", "turns": 150.0, "errors": 0.0, "first10": 30.0, "last10": 45.0},
    ])  # fmt: skip
    assert rows[0][-1] == "2.00×" and rows[1][-1] == "1.50×"
    assert rows[2][4:] == ["5.00×", "6.67×", "1.33×"]


def test_parse_phases() -> None:
    assert load.parse_phases("closed:1, open:12.5,long") == [("closed", 1.0), ("open", 12.5), ("long", 150.0)]
    for bad in ("closed", "closed:0", "open:-1", "warm:3", "closed:1.5", "", "closed:5000"):
        with pytest.raises(argparse.ArgumentTypeError):
            load.parse_phases(bad)


class FakeSession:
    """A customer whose turns take `latency` s; records overlapping turns (must never happen)."""

    log: List[tuple] = []
    ids = itertools.count()

    def __init__(self, latency: float = 0.02) -> None:
        self.latency = latency
        self.busy = False
        self.broken = False
        self.id = next(FakeSession.ids)  # id() is reused once a finished session is collected

    async def open(self) -> None:
        return None

    async def turn(self, text: str) -> plan.Turn:
        assert not self.busy, "two turns of one conversation in flight"
        self.busy = True
        turn = plan.Turn(sent=time.monotonic())
        FakeSession.log.append((self.id, text))
        await asyncio.sleep(self.latency)
        turn.done_ms = self.latency * 1000
        self.busy = False
        return turn

    async def close(self) -> None:
        return None


def _in_script_order(log: List[tuple]) -> bool:
    by_conv: Dict[int, List[str]] = {}
    for conv, text in log:
        by_conv.setdefault(conv, []).append(text)
    scripts = {s.turns for s in plan.SCRIPTS}
    return all(any(tuple(texts) == s[: len(texts)] for s in scripts) for texts in by_conv.values())


def test_open_loop_keeps_order_and_starts_new_conversations_when_all_are_busy() -> None:
    FakeSession.log = []
    started, turns = asyncio.run(drive.open_loop(lambda: FakeSession(0.3), 40.0, 1.5, 2.0, random.Random(5)))
    assert len(turns) == pytest.approx(60, abs=25) and all(t.ok for t in turns)
    conversations = {conv for conv, _ in FakeSession.log}
    assert len(conversations) >= 8  # a turn takes 0.3 s at 40 arrivals/s: about 12 busy at once
    assert _in_script_order(FakeSession.log)


def test_closed_loop_replaces_finished_customers() -> None:
    FakeSession.log = []
    started, turns = asyncio.run(drive.closed_loop(lambda: FakeSession(0.01), 3, 0.6))
    assert len(turns) > 3 * plan.TURNS  # each slot finished at least one 8-turn conversation
    assert len({conv for conv, _ in FakeSession.log}) > 3
    assert _in_script_order(FakeSession.log)
    assert all(t.sent < started + 0.6 for t in turns)
