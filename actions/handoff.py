"""Handoff to people: write the ticket, pause the bot, tell the customer their place in line.

`action_handoff` (rules for ask_human / complain / insult, and RoutingPolicy for every other
human route) recomputes the routing decision from the tracker, applies the queue's capacity,
creates the ticket in one transaction (queue, priority, reason + audit record, channel,
language, intent ranking, sentiment trend, transcript, knowledge suggestions), and answers
with ConversationPaused. Outside business hours or with a full queue the ticket is a
callback request instead, and the bot keeps serving. If PostgreSQL is unreachable the
customer is told so and the bot stays on: a pause without a ticket would strand them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of, latest_intent
from handoff import turns
from handoff.hours import wait_minutes
from handoff.queues import handoff_response
from handoff.routing import RouteDecision, TurnSignals, decide, log_decision, with_capacity
from handoff.routing_config import GENERAL, RoutingConfig, load_routing
from handoff.tickets import ActiveTicketExists, Ticket, TicketStore
from kefu.config import load_settings
from kefu.errors import BadInput, KefuError, NotFound, StoreUnavailable
from kefu.pgserver import with_database

log = logging.getLogger(__name__)

SIGNAL_SLOTS = ("frustration", "sentiment", "kb_source", "kb_confidence")


class _StoreHolder:
    """One pool per process and event loop (tests run a loop per test)."""

    store: Optional[TicketStore] = None
    loop: Optional[asyncio.AbstractEventLoop] = None
    url: Optional[str] = None
    lock: Optional[asyncio.Lock] = None


async def ticket_store() -> TicketStore:
    """The action server's ticket store on the tracker-store database, opened and migrated once."""
    settings = load_settings()
    if not settings.postgres_url:
        raise StoreUnavailable("no PostgreSQL configured for handoff tickets (KEFU_POSTGRES_URL)")
    url = settings.postgres_url
    if not urlsplit(url).path.lstrip("/"):  # a server URL without a database: the configured one
        url = with_database(url, settings.database)
    loop = asyncio.get_running_loop()
    holder = _StoreHolder
    if holder.loop is not loop or holder.lock is None:
        holder.store, holder.loop, holder.url, holder.lock = None, loop, None, asyncio.Lock()
    async with holder.lock:
        if holder.store is None or holder.url != url:
            store = TicketStore(url, max_size=4, timeout=5.0)
            await store.open()
            await store.migrate()
            holder.store, holder.url = store, url
        return holder.store


def routing_config() -> RoutingConfig:
    return load_routing(load_settings().routing_file)


def route_turn(tracker: Tracker, config: RoutingConfig) -> RouteDecision:
    """The same decision RoutingPolicy made for the latest user turn."""
    slots = {name: tracker.get_slot(name) for name in SIGNAL_SLOTS if name in tracker.slots}
    signals = TurnSignals.from_parse(
        tracker.latest_message or {},
        slots,
        unclear_before=turns.unclear_before(tracker.events, config),
        in_form=bool((tracker.active_loop or {}).get("name")),
    )
    return decide(signals, config)


def _response_text(domain: Dict[str, Any], name: str, language: str) -> Optional[str]:
    """The text of response `name` in `language` (the unconditioned variant is English)."""
    variants = (domain.get("responses") or {}).get(name) or []
    fallback = None
    for variant in variants:
        conditions = variant.get("condition") or []
        if any(c.get("name") == "language" and c.get("value") == language for c in conditions):
            return variant.get("text")
        if not conditions and fallback is None:
            fallback = variant.get("text")
    return fallback


def suggestions(tracker: Tracker, domain: Dict[str, Any], language: str) -> List[Dict[str, Any]]:
    """Drafts for the agent: the bot's own answer to the detected question, and the knowledge hit."""
    found: List[Dict[str, Any]] = []
    intent = latest_intent(tracker)
    ranking = turns.intent_ranking(tracker.latest_message or {}, limit=3) or [{"name": intent, "confidence": 0.0}]
    for candidate in ranking:
        text = _response_text(domain, f"utter_faq_{candidate['name']}", language)
        if text:
            found.append({"source": "faq_response", "intent": candidate["name"],
                          "confidence": candidate["confidence"], "text": text})
    if tracker.slots.get("kb_source"):
        found.append({"source": tracker.slots.get("kb_source"), "confidence": tracker.slots.get("kb_confidence"),
                      "text": tracker.slots.get("kb_answer")})
    return found


async def _announce_existing(dispatcher: CollectingDispatcher, store: TicketStore, ticket: Ticket, config) -> None:
    position = await store.queue_position(ticket.id)
    if position:
        minutes = await _wait_minutes(store, ticket.queue, position, config)
        dispatcher.utter_message(response="utter_handoff_queue", position=position, minutes=minutes)
    else:
        dispatcher.utter_message(response="utter_handoff_already")


async def _wait_minutes(store: TicketStore, queue: str, position: int, config: RoutingConfig) -> int:
    handle = await store.recent_handling_seconds(queue)
    return wait_minutes(config.staffing(queue).expected_wait_seconds(position, handle))


async def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    domain: Dict[str, Any],
    decision: RouteDecision,
    config: RoutingConfig,
) -> List[Dict[str, Any]]:
    """Write the ticket for `decision` and tell the customer; shared by handoff and fallback."""
    language = language_of(tracker)
    events: List[Dict[str, Any]] = []
    if (tracker.active_loop or {}).get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    try:
        store = await ticket_store()
        existing = await store.active_for_conversation(tracker.sender_id)
        if existing is not None:
            await _announce_existing(dispatcher, store, existing, config)
            return [*events, *pause(existing.id)]
        if decision.route != "callback":
            decision = with_capacity(decision, await store.waiting_count(decision.queue or GENERAL), config)
        ticket = await store.create(
            conversation_id=tracker.sender_id,
            channel=(tracker.get_latest_input_channel() or "unknown")[:64],
            queue=decision.queue or GENERAL,
            priority=decision.priority,
            reason=decision.reason,
            reason_detail=decision.record,
            language=language,
            status="callback" if decision.route == "callback" else "waiting",
            intent_ranking=turns.intent_ranking(tracker.latest_message or {}),
            sentiment_trend=turns.sentiment_trend(tracker.events),
            transcript=turns.transcript(tracker.events),
            suggestions=suggestions(tracker, domain, language),
        )
    except ActiveTicketExists as exc:  # another turn of this conversation won the race
        try:
            await _announce_existing(dispatcher, store, await store.get(exc.ticket_id), config)
        except (NotFound, KefuError):
            dispatcher.utter_message(response="utter_handoff_already")
        return [*events, *pause(exc.ticket_id)]
    except (StoreUnavailable, BadInput) as exc:
        log.error("handoff ticket for %s not written: %s", tracker.sender_id[:64], exc)
        dispatcher.utter_message(response="utter_handoff_unavailable")
        return events
    log_decision(tracker.sender_id, decision, "action_handoff")
    if decision.route == "callback":
        hours = config.staffing(ticket.queue).hours
        dispatcher.utter_message(
            response="utter_handoff_callback",
            json_message={"callback": {"queue": ticket.queue, "ticket": ticket.id}},
            schedule=hours.describe(language),
            reference=ticket.id[:8].upper(),
        )
        return [*events, SlotSet("handoff_ticket", ticket.id)]
    position = await store.queue_position(ticket.id)
    minutes = await _wait_minutes(store, ticket.queue, position, config)
    # the web chat shows "waiting for an agent" on a custom payload {"handoff": "queued", ...}
    payload = {"handoff": "queued", "queue": ticket.queue, "reason": decision.reason, "ticket": ticket.id,
               "position": position, "wait_minutes": minutes}
    dispatcher.utter_message(response=handoff_response(decision.reason), json_message=payload)
    dispatcher.utter_message(response="utter_handoff_queue", position=position, minutes=minutes)
    return [*events, *pause(ticket.id)]


def pause(ticket_id: str) -> List[Dict[str, Any]]:
    """Remember the ticket, then pause. `action_listen` goes before the pause because Rasa stops
    predicting once paused: without it the customer's next message after the resume would follow
    action_handoff directly, a dialogue state no rule or story was trained on."""
    return [SlotSet("handoff_ticket", ticket_id), ActionExecuted("action_listen"), ConversationPaused()]


def forced_decision(tracker: Tracker, decision: RouteDecision) -> RouteDecision:
    """action_handoff ran although routing says the bot may answer (a learned prediction):
    the customer still gets a person, recorded as an explicit request."""
    record = {**decision.record, "route": "human", "queue": GENERAL, "reason": "explicit_request",
              "why": f"action_handoff predicted for {latest_intent(tracker)} (routing said {decision.route})"}
    return RouteDecision("human", GENERAL, "explicit_request", record, decision.priority)


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        config = routing_config()
        decision = route_turn(tracker, config)
        if not decision.hands_over:
            decision = forced_decision(tracker, decision)
        return await hand_over(dispatcher, tracker, domain, decision, config)


class ActionRate(Action):
    """Stores the 1-5 answer to the rating question asked after an agent closed the ticket."""

    def name(self) -> str:
        return "action_rate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        rating = turns.parse_rating((tracker.latest_message or {}).get("text"))
        if rating is None:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        try:
            store = await ticket_store()
            ticket = await store.rate(tracker.sender_id, rating)
        except (StoreUnavailable, BadInput) as exc:
            log.error("rating %s of %s not stored: %s", rating, tracker.sender_id[:64], exc)
            ticket = None
        if ticket is not None:
            log.info("rating %s stored on ticket %s", rating, ticket.id)
        dispatcher.utter_message(response="utter_rating_sorry" if rating <= 2 else "utter_rating_thanks")
        return [SlotSet("handoff_ticket", None)]
