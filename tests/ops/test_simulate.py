"""The traffic simulator: a reproducible plan, and real traffic through the running stack's REST channel
that the report's loader then reads back from Rasa's tracker store."""

from __future__ import annotations

import time

import pytest

from analytics import metrics
from analytics.loader import Period, load_dataset
from analytics.report import default_intent_groups
from kefu.errors import BadInput
from ops import cli
from ops.simulate import plan, simulate


def test_plan_is_reproducible_and_bilingual() -> None:
    a, b = plan(40, 7), plan(40, 7)
    assert a == b
    assert [c.messages for c in plan(40, 8)] != [c.messages for c in a]
    journeys = {c.journey for c in a}
    assert any(j.endswith("_zh") for j in journeys) and any(j.endswith("_en") for j in journeys)
    assert len({c.sender for c in a}) == 40


@pytest.mark.parametrize("n", [0, -1, 10_001])
def test_plan_rejects_bad_sizes(n: int) -> None:
    with pytest.raises(BadInput):
        plan(n, 1)


def test_unreachable_assistant_is_reported(capsys: pytest.CaptureFixture) -> None:
    result = simulate("http://127.0.0.1:1", 1, 1)
    assert result.errors and result.messages == 0
    assert cli.main(["simulate", "--customers", "1", "--url", "http://127.0.0.1:1", "--no-agents"]) == 1
    assert cli.main(["simulate", "--customers", "1", "--url", "file:///etc/passwd", "--no-agents"]) == 1
    assert "--url must start with" in capsys.readouterr().err


@pytest.mark.servers
@pytest.mark.timeout(900)
def test_simulated_traffic_reaches_the_tracker_store_and_the_report(kefu_stack) -> None:
    settings = kefu_stack
    started = time.time()
    result = simulate(f"http://127.0.0.1:{settings.rasa_port}", 6, seed=3, db_url=settings.postgres_url)
    assert not result.errors, result.errors
    expected = sum(len(c.messages) for c in plan(6, 3))
    assert result.messages == expected and result.replies >= expected
    data = load_dataset(settings.postgres_url, Period(started - 5, time.time() + 5))
    senders = {s for s in data.events["sender_id"].astype(str) if s.startswith("sim-3-")}
    assert senders == {c.sender for c in plan(6, 3)}
    user_texts = set(data.events.loc[data.events["type_name"] == "user", "text"].dropna().astype(str))
    assert {m for c in plan(6, 3) for m in c.messages} <= user_texts
    out = metrics.compute_all(data, default_intent_groups())
    summary = metrics.summary(out)
    assert summary["conversations"] >= 6
    assert 0 < summary["latency_p50_s"] < 60  # real reply latencies from the tracker's timestamps
    assert out["intents"]["count"].sum() == expected
