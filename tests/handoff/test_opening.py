"""handoff.opening: the one place a handoff is opened (real PostgreSQL ticket store, no Rasa)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from handoff import opening
from handoff.opening import HandoffRequest, open_handoff
from handoff.tickets import TicketStore
from kefu.config import PROJECT_ROOT
from kefu.contracts import CallbackPayload, HandoffQueued, read_ranking
from kefu.errors import StoreUnavailable
from kefu.routing.decision import TurnSignals, decide
from kefu.routing.settings import load_routing, parse_routing

ROUTING = PROJECT_ROOT / "data" / "routing.yml"
OPEN = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # Wednesday 11:00 in Shanghai: every queue open
NIGHT = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai: only senior is open
RESPONSES = {"utter_faq_freeze_card": [{"condition": [{"type": "slot", "name": "language", "value": "zh"}],
                                        "text": "App里可冻结"}, {"text": "Freeze it in the app"}]}


@pytest.fixture(scope="module")
def config():
    return load_routing(ROUTING)


def request(conversation: str = "c1", intent: str = "ask_human", **slots: Any) -> HandoffRequest:
    parse = {"intent": {"name": intent, "confidence": 0.97}, "intent_ranking": [{"name": intent, "confidence": 0.97}]}
    events = [{"event": "user", "text": "转人工", "timestamp": 5.0, "parse_data": parse},
              {"event": "bot", "text": "好的", "timestamp": 6.0}]
    return HandoffRequest(conversation, "socketio", "zh", parse, events, slots, RESPONSES)


def factory(store: TicketStore):
    async def get() -> TicketStore:
        return store

    return get


async def test_a_live_handoff_writes_the_ticket_and_says_where_it_stands(store, config):
    decision = decide(TurnSignals("ask_human", 0.97), config, now=OPEN)
    opened = await open_handoff(request(), decision, config, factory(store))
    assert (opened.outcome, opened.queue, opened.position, opened.wait_minutes) == ("queued", "general", 1, 4)
    (ticket,) = await store.list_open()
    assert ticket.id == opened.ticket_id and ticket.priority == 60 and ticket.channel == "socketio"
    assert ticket.reason_detail["capacity"] == {"waiting": 0, "max_waiting": 30}
    assert [line["role"] for line in ticket.transcript] == ["customer", "bot"]
    payload: HandoffQueued = opened.queued_payload()
    assert payload == {"handoff": "queued", "queue": "general", "reason": "explicit_request", "ticket": ticket.id,
                       "position": 1, "wait_minutes": 4}
    # a second turn finds the open ticket instead of writing another
    again = await open_handoff(request(), decision, config, factory(store))
    assert (again.outcome, again.ticket_id, again.position) == ("existing", ticket.id, 1)
    await store.claim(ticket.id, "alice")
    claimed = await open_handoff(request(), decision, config, factory(store))
    assert (claimed.outcome, claimed.position, claimed.wait_minutes) == ("existing", 0, 0)


async def test_outside_hours_a_callback_ticket(store, config):
    decision = decide(TurnSignals("check_balance", 0.8), config, now=NIGHT)
    opened = await open_handoff(request("night", "check_balance"), decision, config, factory(store))
    assert (opened.outcome, opened.queue) == ("callback", "accounts")
    assert opened.schedule == config.staffing("accounts").hours.describe("zh") == "周一-周日 08:00-22:00"
    payload: CallbackPayload = opened.callback_payload()
    assert payload == {"callback": {"queue": "accounts", "ticket": opened.ticket_id}}
    assert opened.reference == opened.ticket_id[:8].upper()
    (ticket,) = await store.list_callbacks()
    assert (ticket.status, ticket.reason, ticket.reason_detail["original_reason"]) == ("callback", "callback",
                                                                                        "specialist")


async def test_a_full_queue_becomes_a_callback(store):
    raw = yaml.safe_load(ROUTING.read_text(encoding="utf-8"))
    raw["defaults"]["hours"] = {"always": True}
    raw["queues"]["general"] = {"max_waiting": 1}
    small = parse_routing(raw)
    decision = decide(TurnSignals("ask_human", 0.97), small, now=OPEN)
    first = await open_handoff(request("one"), decision, small, factory(store))
    second = await open_handoff(request("two"), decision, small, factory(store))
    assert (first.outcome, second.outcome) == ("queued", "callback")
    assert second.decision.record["capacity"] == {"waiting": 1, "max_waiting": 1}


async def test_a_lost_race_reports_the_winners_ticket(store, config):
    decision = decide(TurnSignals("ask_human", 0.97), config, now=OPEN)
    winner = await open_handoff(request("race"), decision, config, factory(store))

    class Racing:  # the look-up ran before the other turn's insert
        async def active_for_conversation(self, conversation_id: str) -> None:
            return None

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    async def racing() -> Any:
        return Racing()

    lost = await open_handoff(request("race"), decision, config, racing)
    assert (lost.outcome, lost.ticket_id, lost.position) == ("existing", winner.ticket_id, 1)
    assert len(await store.list_open()) == 1


async def test_an_unreachable_store_writes_nothing(config, caplog):
    async def down() -> TicketStore:
        raise StoreUnavailable("ticket store unavailable: OperationalError")

    decision = decide(TurnSignals("ask_human", 0.97), config, now=OPEN)
    opened = await open_handoff(request("x" * 300), decision, config, down)
    assert (opened.outcome, opened.ticket_id) == ("unavailable", None)
    assert "not written" in caplog.text and "x" * 65 not in caplog.text


async def test_a_hostile_conversation_id_is_refused_not_raised(store, config):
    decision = decide(TurnSignals("ask_human", 0.97), config, now=OPEN)
    assert (await open_handoff(request("x" * 300), decision, config, factory(store))).outcome == "unavailable"


def test_drafted_answers_for_the_agent():
    parse = {"intent": {"name": "freeze_card", "confidence": 0.6},
             "intent_ranking": [{"name": "freeze_card", "confidence": 0.6}, {"name": "greet", "confidence": 0.1}]}
    drafts = opening.suggestions(parse, {"kb_source": "faq", "kb_confidence": 0.8, "kb_answer": "A"}, RESPONSES, "en")
    assert drafts == [{"source": "faq_response", "intent": "freeze_card", "confidence": 0.6,
                       "text": "Freeze it in the app"}, {"source": "faq", "confidence": 0.8, "text": "A"}]
    # no ranking: the intent itself
    only = opening.suggestions({"intent": {"name": "freeze_card"}}, {}, RESPONSES, "zh")
    assert only == [{"source": "faq_response", "intent": "freeze_card", "confidence": 0.0, "text": "App里可冻结"}]


def test_transcript_trend_and_ranking_are_bounded_and_json_safe():
    user = {"event": "user", "text": "x" * 5000, "timestamp": 5.0,
            "parse_data": {"intent": {"name": "greet", "confidence": 0.95},
                           "sentiment": {"label": "negative", "score": float("nan"), "intensity": "odd"}}}
    events = [user, *({"event": "bot", "text": f"answer {n}", "timestamp": n} for n in range(30))]
    events += [{"event": "bot", "text": None}, {"event": "slot", "name": "a", "value": 1}]
    lines = opening.transcript(events)
    assert len(lines) == opening.TRANSCRIPT_TURNS and lines[-1] == {"role": "bot", "text": "answer 29", "ts": 29.0}
    assert len(opening.transcript(events, limit=100)[0]["text"]) == opening.TRANSCRIPT_CHARS
    (trend,) = opening.sentiment_trend(events)
    assert trend == {"label": "negative", "score": 0.0, "intensity": "none", "ts": 5.0}
    ranking = read_ranking([{"name": "a", "confidence": "x"}, "junk", {"name": "b"}])
    assert ranking == [{"name": "a", "confidence": 0.0}, {"name": "b", "confidence": 0.0}]
