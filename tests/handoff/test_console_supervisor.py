"""Supervisors' live figures (`/api/metrics/live`, the report's metric code over a recent window) and
agents' intent corrections (`/api/tickets/<id>/correction`), on a real console process + PostgreSQL.

The fixture below is small enough to recompute every figure by hand (see `test_live_figures_...`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from analytics.live import ReportFigures, parse_window
from analytics.loader import EVENTS_DDL
from handoff.console.live import LiveCache
from handoff.tickets import TicketStore
from kefu.domain import domain_intents
from kefu.errors import BadInput
from ops.iterate.proposals import Proposals, collect_corrections
from tests.analytics.conftest import insert_events, insert_tickets
from tests.analytics.fixture_data import action, bot, session, user
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import login

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]

NOW = time.time()
BASE = NOW - 3600  # an hour ago: inside 24h, today (mostly) and 3d
OLD = NOW - 2 * 86400  # two days ago: inside 3d only


def _ticket(tid: str, conv: str, queue: str, reason: str, created: float, claimed: float | None,
            closed: float | None, rating: int | None) -> dict:
    return {"id": tid, "conversation_id": conv, "channel": "rest", "queue": queue, "priority": 1, "reason": reason,
            "language": "zh", "status": "closed" if closed else "waiting", "agent": "alice" if claimed else None,
            "created_at": created, "claimed_at": claimed, "closed_at": closed,
            "disposition": "resolved" if closed else None, "rating": rating}


@pytest.fixture(scope="module")
def live_data(console, tickets_url: str) -> dict:
    """Three conversations in the last hour (A and C bot-only, B handed off after a fallback), one two days
    old, two closed tickets and one waiting."""
    with psycopg.connect(tickets_url, autocommit=True) as conn:
        conn.execute(EVENTS_DDL)
    insert_events(tickets_url, [
        *session("live-a", BASE),
        user("live-a", BASE + 1, "greet", "你好"), bot("live-a", BASE + 3),
        user("live-a", BASE + 10, "check_balance", "查余额"), bot("live-a", BASE + 12, custom={"source": "faq"}),
        user("live-b", BASE + 100, "nlu_fallback", "asdf", conf=0.2), action("live-b", BASE + 101, "action_fallback"),
        bot("live-b", BASE + 102),
        user("live-b", BASE + 110, "ask_human", "转人工"), action("live-b", BASE + 111, "action_handoff"),
        bot("live-b", BASE + 112, custom={"handoff": {"queue": "cards", "reason": "explicit_request"}}),
        user("live-c", BASE + 200, "check_balance", "balance"), bot("live-c", BASE + 205),
        user("live-old", OLD, "greet", "hi"), bot("live-old", OLD + 2),
    ])
    insert_tickets(tickets_url, [
        _ticket("live-t1", "live-b", "cards", "explicit_request", BASE + 112, BASE + 172, BASE + 472, 4),
        _ticket("live-t2", "live-e", "senior", "angry", BASE + 300, BASE + 320, BASE + 420, None),
        _ticket("live-t3", "live-f", "cards", "low_confidence", NOW - 120, None, None, None),
    ])
    return {"url": tickets_url}


def test_live_figures_are_the_report_metrics_of_the_window(console, live_data):
    vera = login(console, "vera")
    resp = vera.get("/api/metrics/live")
    assert resp.status_code == 200, resp.text
    m = resp.json()
    assert m["window"] == "24h"
    # conversations A, B, C (the ticket of live-e has no conversation); only B had a human
    assert (m["conversations"], m["with_human"]) == (3, 1)
    assert m["automation_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["escalation_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # tickets created in the window by queue, rate = count / conversations
    assert [(q["queue"], q["count"]) for q in m["escalations_by_queue"]] == [("cards", 2), ("senior", 1)]
    assert m["escalations_by_queue"][0]["rate"] == pytest.approx(2 / 3, abs=1e-4)
    # user turns: A 2, B 2, C 1; fallback turns: B's first (nlu_fallback + action_fallback)
    assert (m["turns"], m["fallback_rate"]) == (5, 0.2)
    # bot-only AHT: A 12 − 1 = 11 s, C 205 − 200 = 5 s → 8 s; human AHT: closed − claimed = 300 s and 100 s
    assert (m["aht_bot_s"], m["aht_human_s"]) == (8.0, 200.0)
    # CSAT over the two tickets closed in the window: one rated 4
    assert (m["closed"], m["csat_mean"], m["csat_response_rate"]) == (2, 4.0, 0.5)
    # the live queue state and agents online are part of the same answer
    cards = next(q for q in m["queues"] if q["queue"] == "cards")
    assert (cards["waiting"], cards["assigned"]) == (1, 0) and cards["oldest_wait_seconds"] >= 120
    assert isinstance(m["agents_online"], list)

    wide = vera.get("/api/metrics/live", params={"window": "3d"}).json()
    assert wide["window"] == "3d" and wide["conversations"] == 4  # the two-day-old conversation joins
    assert wide["aht_bot_s"] == 6.0 and wide["fallback_rate"] == pytest.approx(1 / 6, abs=1e-4)
    narrow = vera.get("/api/metrics/live", params={"window": "30s"}).json()
    assert narrow["conversations"] == 0 and narrow["automation_rate"] is None and narrow["aht_bot_s"] is None
    today = vera.get("/api/metrics/live", params={"window": "today"})
    assert today.status_code == 200 and today.json()["window"] == "today"


BAD_WINDOWS = ["", "abc", "-1h", "0h", "1.5h", "8d", "99999999999d", "1e9s", "24", "h", "24h ; DROP TABLE events",
               "<script>alert(1)</script>", "x" * 5000, "%00", "２４h", "24H\x00"]


@pytest.mark.parametrize("window", BAD_WINDOWS)
def test_bad_windows_are_400_with_a_reason(console, window):
    vera = login(console, "vera")
    resp = vera.get("/api/metrics/live", params={"window": window})
    assert resp.status_code == 400, (window[:40], resp.text[:200])
    assert "window" in resp.json()["detail"] and len(resp.json()["detail"]) < 200


def test_live_figures_are_for_supervisors_only(console):
    alice = login(console, "alice")
    assert alice.get("/api/metrics/live").status_code == 403
    assert requests.get(console.url + "/api/metrics/live").status_code == 401
    vera = login(console, "vera")
    assert vera.get("/api/metrics/live?window=1h&window=2h").status_code == 400


def test_window_parsing_and_cache_sharing():
    assert parse_window(None, 10_000.0)[0] == "24h"
    name, period = parse_window(" 7D ", 1_000_000.0)
    assert name == "7d" and period.seconds == 7 * 86400
    with pytest.raises(BadInput):
        parse_window(123, 0.0)  # type: ignore[arg-type]

    async def many_pollers() -> tuple[int, list[dict]]:
        cache, calls = LiveCache(ttl=3600), []

        async def compute() -> dict:
            calls.append(1)
            await asyncio.sleep(0)
            return {"n": len(calls)}

        results = await asyncio.gather(*(cache.get("24h", compute) for _ in range(20)))
        return len(calls), list(results)

    calls, results = asyncio.run(many_pollers())
    assert calls == 1 and all(r == {"n": 1} for r in results)


def test_the_consoles_live_provider_names_windows_like_the_report():
    """`ops.console` hands the console `ReportFigures`: the same canonical windows, the same 400s."""
    provider = ReportFigures()
    assert provider.window_name(None) == "24h" and provider.window_name(" 7D ") == "7d"
    assert provider.window_name("today") == "today"
    for bad in BAD_WINDOWS:
        with pytest.raises(BadInput):
            provider.window_name(bad)


async def _ticket_with_customer_text(url: str, text: str, queue: str = "cards") -> str:
    async with TicketStore(url, max_size=2) as store:
        ticket = await store.create(conversation_id=f"corr-{uuid.uuid4().hex[:8]}", channel="rest", queue=queue,
                                    reason="low_confidence", priority=5, language="zh",
                                    transcript=[{"role": "customer", "text": text, "ts": 0.0}])
        return ticket.id


async def test_agent_correction_is_stored_and_collected_by_iterate(console, tickets_url, tmp_path: Path):
    alice, bob = login(console, "alice"), login(console, "bob")
    ticket_id = await _ticket_with_customer_text(tickets_url, "我的卡丢了怎么办呀")
    assert alice.post(f"/api/tickets/{ticket_id}/claim").status_code == 200
    assert bob.post(f"/api/tickets/{ticket_id}/correction", {"intent": "report_lost_card"}).status_code == 403
    resp = alice.post(f"/api/tickets/{ticket_id}/correction", {"intent": "report_lost_card"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["reason_detail"]["corrected_intent"] == "report_lost_card"
    assert alice.get(f"/api/tickets/{ticket_id}").json()["ticket"]["reason_detail"]["corrected_by"] == "alice"
    assert alice.post(f"/api/tickets/{ticket_id}/close", {"disposition": "resolved"}).status_code == 200

    proposals = Proposals(tmp_path / "registry")
    found = collect_corrections(tickets_url, 0.0, proposals)
    expected = [("我的卡丢了怎么办呀", "report_lost_card", ticket_id)]
    assert [(p["text"], p["intent"], p["ref"]) for p in found] == expected


async def test_bad_corrections_are_400(console, tickets_url):
    alice = login(console, "alice")
    ticket_id = await _ticket_with_customer_text(tickets_url, "hello")
    alice.post(f"/api/tickets/{ticket_id}/claim")
    url = f"/api/tickets/{ticket_id}/correction"
    for body in ({"intent": "not_an_intent"}, {"intent": ""}, {"intent": "   "}, {"intent": 7}, {"intent": None},
                 {}, {"intent": "x" * 5000}, {"intent": "greet'; DROP TABLE handoff_tickets; --"},
                 {"intent": "EXTERNAL_handoff_closed"}, {"intent": ["greet"]}):
        resp = alice.post(url, body)
        assert resp.status_code == 400 and "intent" in resp.json()["detail"], (str(body)[:60], resp.text[:200])
    assert alice.post(url, data=b"{oops", headers={"Content-Type": "application/json"}).status_code == 400
    assert alice.post(url, {"intent": "greet"}, csrf="wrong").status_code == 403
    assert alice.post("/api/tickets/" + "0" * 32 + "/correction", {"intent": "greet"}).status_code == 404
    async with TicketStore(tickets_url, max_size=2) as store:
        assert "corrected_intent" not in (await store.get(ticket_id)).reason_detail


def test_domain_intents_come_from_the_domain_files():
    intents = domain_intents()
    assert {"report_lost_card", "greet", "ask_human", "check_balance"} <= set(intents)
    assert not any(i.startswith("EXTERNAL_") for i in intents) and list(intents) == sorted(intents)
