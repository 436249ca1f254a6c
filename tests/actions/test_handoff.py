"""action_handoff and action_rate against a real PostgreSQL ticket store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoff, ActionRate
from handoff.tickets import TicketStore
from kefu.routing.decision import TurnSignals, decide
from kefu.routing.settings import load_routing
from tests.actions.handoff_fixtures import NEVER_OPEN, USER_TIMESTAMP, routing_file, tracker, user
from tests.servers import free_port


async def tickets(url: str) -> list:
    async with TicketStore(url) as store:
        return await store.list_open() + await store.list_callbacks()


def event_names(events: list) -> list:
    return [e["event"] for e in events]


async def run_handoff(domain, t):
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, t, domain)
    return dispatcher, events


async def test_explicit_request_writes_a_ticket_pauses_and_tells_the_position(handoff_env, domain):
    history = [user("我的卡怎么冻结", "freeze_card", 0.97), {"event": "bot", "text": "App里可冻结", "timestamp": 1.0}]
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human", 0.99, sender="c-1", history=history))
    assert event_names(events)[-1] == "pause"
    (ticket,) = await tickets(handoff_env)
    assert (ticket.conversation_id, ticket.queue, ticket.reason, ticket.status) == ("c-1", "general",
                                                                                   "explicit_request", "waiting")
    assert ticket.priority == 60 and ticket.language == "zh" and ticket.channel == "socketio"
    assert [line["role"] for line in ticket.transcript] == ["customer", "bot", "customer"]
    assert ticket.intent_ranking[0]["name"] == "ask_human"
    detail = ticket.reason_detail
    # the tracker's parse data carries no model thresholds: the YAML's numbers, and the record says why
    assert (detail["thresholds"]["auto"], detail["thresholds"]["specialist"]) == (0.9, 0.7)
    assert "retrain" in detail["thresholds"]["source"] and detail["automation_level"] == "full-auto"
    assert detail["reason"] == "explicit_request" and detail["capacity"]["waiting"] == 0
    first, second = dispatcher.messages
    assert first["response"] == "utter_handoff" and first["custom"]["handoff"] == "queued"
    assert first["custom"]["ticket"] == ticket.id and first["custom"]["position"] == 1
    assert second["response"] == "utter_handoff_queue" and second["position"] == 1
    assert second["minutes"] == 4  # no history yet: handle_seconds 240 from routing.yml
    assert {"event": "slot", "name": "handoff_ticket", "value": ticket.id} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]


async def test_anger_goes_to_the_senior_queue_first(handoff_env, domain):
    await run_handoff(domain, tracker("转人工", "ask_human", sender="calm"))
    angry = {"sentiment": {"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["垃圾"]}}
    dispatcher, events = await run_handoff(domain, tracker("垃圾银行", "check_balance", 0.99, sender="angry", **angry))
    assert dispatcher.messages[0]["response"] == "utter_handoff_senior"
    open_tickets = await tickets(handoff_env)
    assert [t.conversation_id for t in open_tickets] == ["angry", "calm"]  # priority 90 before 60
    assert open_tickets[0].sentiment_trend[-1]["label"] == "negative"
    assert open_tickets[0].reason_detail["why"] == "strong negative sentiment"


async def test_insult_and_complaint(handoff_env, domain):
    d1, _ = await run_handoff(domain, tracker("骂人", "insult", sender="i"))
    d2, _ = await run_handoff(domain, tracker("I want to complain", "complain", sender="c", slots={"language": "en"}))
    assert d1.messages[0]["response"] == "utter_handoff_senior"
    assert d2.messages[0]["response"] == "utter_handoff_complaint"
    reasons = {t.conversation_id: (t.queue, t.reason, t.language) for t in await tickets(handoff_env)}
    assert reasons == {"i": ("senior", "angry", "zh"), "c": ("general", "complaint", "en")}


async def test_a_second_handoff_reuses_the_open_ticket(handoff_env, domain):
    await run_handoff(domain, tracker("转人工", "ask_human", sender="first"))
    await run_handoff(domain, tracker("人工", "ask_human", sender="me"))
    dispatcher, events = await run_handoff(domain, tracker("还要等多久", "ask_human", sender="me"))
    assert len(await tickets(handoff_env)) == 2
    assert dispatcher.messages[0]["response"] == "utter_handoff_queue" and dispatcher.messages[0]["position"] == 2
    assert event_names(events)[-1] == "pause"


async def test_specialist_queue_and_expected_wait_from_recent_handling_times(handoff_env, domain):
    import psycopg

    for n in range(3):  # three closed cards tickets that took 10 minutes each
        await run_handoff(domain, tracker("卡", "freeze_card", 0.8, sender=f"old{n}"))
    with psycopg.connect(handoff_env, autocommit=True) as conn:
        conn.execute("UPDATE handoff_tickets SET status='closed', agent='a', claimed_at=now() - interval '10 min', "
                     "closed_at=now()")
    for n in range(4):
        dispatcher, _ = await run_handoff(domain, tracker("冻结", "freeze_card", 0.8, sender=f"new{n}"))
    assert dispatcher.messages[0]["response"] == "utter_handoff_specialist"
    queue_message = dispatcher.messages[1]
    # 4th in line, 3 agents → 2 rounds of 10 minutes
    assert (queue_message["position"], queue_message["minutes"]) == (4, 20)
    assert {t.queue for t in await tickets(handoff_env)} == {"cards"}


async def test_outside_hours_a_callback_ticket_is_offered_and_the_bot_stays(handoff_env, domain, tmp_path, monkeypatch):
    closed = routing_file(tmp_path, defaults={"hours": NEVER_OPEN, "agents": 3, "max_waiting": 30,
                                              "handle_seconds": 240})
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(closed))
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human", sender="night"))
    assert "pause" not in event_names(events)
    (message,) = dispatcher.messages
    assert message["response"] == "utter_handoff_callback" and message["schedule"]
    (ticket,) = await tickets(handoff_env)
    assert (ticket.status, ticket.reason, ticket.queue) == ("callback", "callback", "general")
    assert ticket.reason_detail["original_reason"] == "explicit_request"
    assert ticket.reason_detail["hours"]["open"] is False


async def test_a_full_queue_offers_a_callback(handoff_env, domain, tmp_path, monkeypatch):
    small = routing_file(tmp_path, group_overrides={"general": {"max_waiting": 1}})
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(small))
    await run_handoff(domain, tracker("转人工", "ask_human", sender="one"))
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human", sender="two"))
    assert dispatcher.messages[0]["response"] == "utter_handoff_callback" and "pause" not in event_names(events)
    statuses = {t.conversation_id: t.status for t in await tickets(handoff_env)}
    assert statuses == {"one": "waiting", "two": "callback"}


async def test_assist_level_hands_everything_to_agents_with_drafted_answers(handoff_env, domain, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(routing_file(tmp_path, automation_level="assist")))
    await run_handoff(domain, tracker("我的余额多少", "check_balance", 0.99, sender="assist"))
    (ticket,) = await tickets(handoff_env)
    assert (ticket.queue, ticket.reason) == ("accounts", "assist")
    (draft,) = ticket.suggestions
    assert draft["intent"] == "check_balance" and "余额" in draft["text"]


async def test_a_handoff_from_inside_a_form_ends_the_form(handoff_env, domain):
    angry = {"sentiment": {"label": "negative", "score": -0.95, "intensity": "strong", "signals": []}}
    _, events = await run_handoff(domain, tracker("气死我了", "inform", 0.4, active_loop="lost_card_form", **angry))
    assert event_names(events) == ["active_loop", "slot", "slot", "action", "pause"]
    assert events[3]["name"] == "action_listen"  # the next turn after the resume is an ordinary user turn
    assert events[0]["name"] is None


async def test_store_unavailable_tells_the_customer_and_does_not_pause(domain, monkeypatch, tmp_path):
    monkeypatch.setenv("KEFU_POSTGRES_URL", f"postgresql://kefu:pw@127.0.0.1:{free_port()}/kefu")
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(routing_file(tmp_path)))
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human"))
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_unavailable"] and events == []
    monkeypatch.delenv("KEFU_POSTGRES_URL")
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))  # no .env with a URL either
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human"))
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_unavailable"] and events == []


SABOTAGE = """
CREATE OR REPLACE FUNCTION kefu_test_sabotage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE conversation text := (SELECT conversation_id FROM handoff_tickets WHERE id = NEW.ticket_id);
BEGIN
    IF conversation = 'sabotage-after' THEN  -- the ticket commits; every later statement of this session fails
        PERFORM set_config('search_path', 'kefu_no_such_schema', false);
    ELSIF conversation = 'sabotage-during' THEN  -- the ticket's second statement fails
        RAISE EXCEPTION 'test: the opening message cannot be written';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS kefu_test_sabotage ON handoff_messages;
CREATE TRIGGER kefu_test_sabotage AFTER INSERT ON handoff_messages FOR EACH ROW EXECUTE FUNCTION kefu_test_sabotage();
"""


@pytest.fixture
async def sabotaged(handoff_env):
    """A trigger in the test database that breaks the statements during or after a ticket's insert."""
    import psycopg

    async with TicketStore(handoff_env) as store:
        await store.migrate()
    with psycopg.connect(handoff_env, autocommit=True) as conn:
        conn.execute(SABOTAGE)
    yield handoff_env
    with psycopg.connect(handoff_env, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS kefu_test_sabotage ON handoff_messages")


async def test_an_error_after_the_ticket_is_written_still_pauses_with_that_ticket(sabotaged, domain):
    """No orphan: the ticket exists, so the customer is paused with it (its place in line unknown)."""
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human", sender="sabotage-after"))
    (ticket,) = await tickets(sabotaged)
    assert ticket.conversation_id == "sabotage-after" and ticket.status == "waiting"
    assert event_names(events)[-1] == "pause"
    assert {"event": "slot", "name": "handoff_ticket", "value": ticket.id} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff"]  # no "you are number 0 in line"


async def test_an_error_inside_the_ticket_write_leaves_no_ticket_and_says_try_again(sabotaged, domain):
    dispatcher, events = await run_handoff(domain, tracker("转人工", "ask_human", sender="sabotage-during"))
    assert await tickets(sabotaged) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_unavailable"] and events == []


async def test_hostile_sender_and_text_do_not_crash_or_lose_the_customer(handoff_env, domain):
    dispatcher, events = await run_handoff(domain, tracker("人工", "ask_human", sender="x" * 300))
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_unavailable"] and events == []
    hostile = "'); DROP TABLE handoff_tickets;--\x00<script>alert(1)</script>" + "长" * 5000
    dispatcher, events = await run_handoff(domain, tracker(hostile, "ask_human", sender="hostile"))
    (ticket,) = await tickets(handoff_env)
    stored = ticket.transcript[-1]["text"]
    assert "\x00" not in stored and stored.startswith("'); DROP TABLE") and 990 <= len(stored) <= 1000
    nan = tracker("help", "ask_human", sender="nan", sentiment={"label": "negative", "score": float("nan")})
    await run_handoff(domain, nan)
    assert len(await tickets(handoff_env)) == 2


@pytest.mark.parametrize(
    ("text", "stored", "response"),
    [("5", 5, "utter_rating_thanks"), ("一分", 1, "utter_rating_sorry"), ("3/5", 3, "utter_rating_thanks")],
)
async def test_rating_after_the_agent_closed_the_ticket(handoff_env, domain, text, stored, response):
    await run_handoff(domain, tracker("转人工", "ask_human", sender="rated"))
    async with TicketStore(handoff_env) as store:
        (ticket,) = await store.list_open()
        await store.claim(ticket.id, "alice")
        await store.close_ticket(ticket.id, "alice", "resolved")
    dispatcher = CollectingDispatcher()
    await ActionRate().run(dispatcher, tracker(text, "inform", 0.4, sender="rated"), domain)
    assert dispatcher.messages[0]["response"] == response
    async with TicketStore(handoff_env) as store:
        assert (await store.get(ticket.id)).rating == stored


async def test_rating_without_a_ticket_or_a_number(handoff_env, domain):
    dispatcher = CollectingDispatcher()
    await ActionRate().run(dispatcher, tracker("5", "inform", sender="never-handed-over"), domain)
    await ActionRate().run(dispatcher, tracker("great service", "thanks", sender="x"), domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_rating_thanks", "utter_ask_rephrase"]
    for message in dispatcher.messages:
        assert message["response"] in domain["responses"]


def policy_record(intent: str, confidence: float, **signals) -> dict:
    """What RoutingPolicy put in the `routing` slot for the fixture's latest user message."""
    turn = {"message_id": None, "timestamp": USER_TIMESTAMP}
    config = load_routing(Path(os.environ["KEFU_ROUTING_FILE"]))
    return json.loads(json.dumps(decide(TurnSignals(intent, confidence, turn=turn, **signals), config).record))


async def test_the_policys_decision_for_this_turn_is_used_not_made_again(handoff_env, domain):
    record = policy_record("transfer_limit", 0.8)
    t = tracker("how much can I send", "transfer_limit", 0.8, sender="slot", slots={"routing": record})
    dispatcher, events = await run_handoff(domain, t)
    (ticket,) = await tickets(handoff_env)
    assert (ticket.queue, ticket.reason, ticket.priority) == ("payments", "specialist", 30)
    assert ticket.reason_detail["at"] == record["at"] and ticket.reason_detail["turn"] == record["turn"]
    assert ticket.reason_detail["capacity"] == {"waiting": 0, "max_waiting": 30}
    assert dispatcher.messages[0]["response"] == "utter_handoff_specialist" and event_names(events)[-1] == "pause"


async def test_a_record_of_another_turn_is_ignored(handoff_env, domain):
    stale = {**policy_record("transfer_limit", 0.8), "turn": {"message_id": "earlier", "timestamp": 1.0}}
    await run_handoff(domain, tracker("转人工", "ask_human", 0.99, sender="stale", slots={"routing": stale}))
    (ticket,) = await tickets(handoff_env)
    assert (ticket.queue, ticket.reason) == ("general", "explicit_request")
    assert ticket.reason_detail["at"] != stale["at"]
