"""Every metric on the hand-built fixture (tests/analytics/fixture_data.py), answers worked out by hand."""

from __future__ import annotations

import math

import pytest

from analytics import metrics
from analytics.conversations import build_tables
from analytics.loader import Dataset, Period, load_dataset
from tests.analytics.fixture_data import DAY, GROUPS, T0

PERIOD = Period(T0, T0 + 7 * DAY)


@pytest.fixture(scope="module", params=[250_000, 5], ids=["one-chunk", "many-chunks"])
def data(request: pytest.FixtureRequest, fixture_db: str) -> Dataset:
    return load_dataset(fixture_db, PERIOD, chunk_rows=request.param)


@pytest.fixture(scope="module")
def result(data: Dataset) -> dict:
    return metrics.compute_all(data, GROUPS)


def test_loader_keeps_period_and_skips_malformed_json(data: Dataset) -> None:
    assert data.skipped_rows == 1
    assert set(data.events["sender_id"]) == {"a", "b", "c", "d"}
    assert str(data.events["timestamp"].dtype) == "float64"
    assert str(data.events["type_name"].dtype) == "category"
    assert data.events["timestamp"].is_monotonic_increasing is False  # sorted by sender first
    assert list(data.tickets.sort_values("id")["id"]) == ["t1", "t2", "t3"]


def test_conversations_and_turns(data: Dataset) -> None:
    tables = build_tables(data.events)
    assert len(tables.conversations) == 5
    assert len(tables.turns) == 10


def test_aht(result: dict) -> None:
    aht = result["aht"].set_index("segment")
    assert aht.loc["bot_only", "count"] == 2
    assert aht.loc["bot_only", "aht_s"] == pytest.approx((19.5 + 1.0) / 2)
    assert aht.loc["with_human", "count"] == 3
    assert aht.loc["with_human", "aht_s"] == pytest.approx((300 + 100 + 100) / 3)
    assert aht.loc["with_human", "wait_s"] == pytest.approx((60 + 100 + 6) / 3)
    assert aht.loc["queue:general", "aht_s"] == pytest.approx(300)
    assert aht.loc["queue:senior", "aht_s"] == pytest.approx(100)
    assert aht.loc["queue:loans", "wait_s"] == pytest.approx(6)


def test_fcr_default_window_and_short_window(data: Dataset, result: dict) -> None:
    row = result["fcr"].iloc[0]
    assert (row["eligible"], row["resolved"]) == (4, 3)
    assert row["fcr"] == pytest.approx(0.75)
    short = metrics.fcr(build_tables(data.events), GROUPS, window_days=1.0).iloc[0]
    assert short["fcr"] == pytest.approx(1.0)


def test_csat(result: dict) -> None:
    csat = result["csat"].set_index("rating")
    assert csat.loc["all", "mean"] == pytest.approx(3.0)
    assert csat.loc["all", "response_rate"] == pytest.approx(2 / 3)
    assert csat.loc["all", "closed"] == 3
    assert [int(csat.loc[str(r), "count"]) for r in range(1, 6)] == [0, 1, 0, 1, 0]


def test_resolution_accuracy_fallback_automation(result: dict) -> None:
    acc = result["resolution_accuracy"].iloc[0]
    assert (acc["answers"], acc["rephrased_or_escalated"]) == (7, 2)
    assert acc["accuracy"] == pytest.approx(5 / 7)
    assert result["fallback_rate"].iloc[0]["fallback_rate"] == pytest.approx(0.2)
    auto = result["automation"].iloc[0]
    assert (auto["conversations"], auto["with_human"]) == (5, 3)
    assert auto["automation_rate"] == pytest.approx(0.4)
    assert auto["escalation_rate"] == pytest.approx(0.6)


def test_escalations_by_queue_and_reason(result: dict) -> None:
    esc = result["escalations"]
    by_reason = dict(zip(esc.loc[esc["by"] == "reason", "key"], esc.loc[esc["by"] == "reason", "count"], strict=True))
    assert by_reason == {"angry": 1, "explicit_request": 1, "two_fallbacks": 1}
    by_queue = esc.loc[esc["by"] == "queue"].set_index("key")
    assert by_queue.loc["loans", "rate"] == pytest.approx(1 / 5)


def test_intents_sentiment_agents(result: dict) -> None:
    intents = dict(zip(result["intents"]["intent"], result["intents"]["count"], strict=True))
    assert intents == {"check_balance": 2, "order_status": 2, "nlu_fallback": 2, "greet": 1, "thanks": 1,
                       "ask_human": 1, "loan_info": 1}
    trend = result["sentiment_trend"]
    assert list(trend["day"]) == ["2026-11-01"]
    assert trend["mean"].iloc[0] == pytest.approx(-0.7)
    agents = result["agents"].set_index("agent")
    assert agents.loc["alice", "tickets"] == 2 and agents.loc["alice", "aht_s"] == pytest.approx(200)
    assert agents.loc["alice", "rating"] == pytest.approx(3.0)
    assert agents.loc["bob", "tickets"] == 1 and math.isnan(agents.loc["bob", "rating"])


def test_latency_and_coverage(result: dict) -> None:
    lat = result["latency"].set_index("percentile")["seconds"]
    assert lat["count"] == 10
    assert lat["p50"] == pytest.approx(1.0)
    assert lat["p99"] == pytest.approx(2.91)  # numpy linear interpolation between 2 and 3
    cov = result["coverage"].set_index("source")["share"].to_dict()
    assert cov == pytest.approx({"faq": 0.6, "graph": 0.2, "case": 0.2})


def test_summary_and_empty_period(fixture_db: str, result: dict) -> None:
    s = metrics.summary(result)
    assert s["conversations"] == 5 and s["fcr"] == pytest.approx(0.75)
    empty = load_dataset(fixture_db, Period(T0 + 100 * DAY, T0 + 101 * DAY))
    assert empty.events.empty
    out = metrics.compute_all(empty, GROUPS)
    summary = metrics.summary(out)
    assert summary["conversations"] == 0
    assert math.isnan(summary["fcr"]) and math.isnan(summary["automation_rate"])


def test_growth_against_previous_period(data: Dataset) -> None:
    tables = build_tables(data.events)
    before = build_tables(data.events.loc[data.events["sender_id"] == "a"].reset_index(drop=True))
    growth = metrics.intent_growth(tables, PERIOD, previous=before, min_count=1).set_index("intent")["growth"]
    assert growth["order_status"] == pytest.approx(3.0)  # (2 + 1) / (0 + 1)
    assert growth["check_balance"] == pytest.approx(1.0)  # (2 + 1) / (2 + 1)
    assert growth.index[0] in {"order_status", "nlu_fallback"}
    halves = metrics.intent_growth(tables, PERIOD, min_count=1)  # everything is in the first half
    assert halves.empty


def test_action_session_start_alone_splits_conversations() -> None:
    import pandas as pd

    from analytics.loader import EVENT_COLUMNS, _typed

    def row(i: int, type_name: str, ts: float, intent=None, action=None) -> dict:
        base = dict.fromkeys(EVENT_COLUMNS)
        base.update(id=i, sender_id="s", type_name=type_name, timestamp=ts, intent_name=intent, action_name=action)
        return base

    frame = _typed(pd.DataFrame([
        row(1, "action", 1.0, action="action_session_start"), row(2, "user", 2.0, intent="greet"),
        row(3, "bot", 3.0), row(4, "action", 10.0, action="action_session_start"),
        row(5, "user", 11.0, intent="greet"), row(6, "bot", 11.5),
    ]))
    tables = build_tables(frame)
    assert len(tables.conversations) == 2
    assert list(tables.turns["latency"]) == [1.0, 0.5]
