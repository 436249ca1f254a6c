"""The one place a handoff is opened: ticket, capacity, queue position, expected wait, callback.

`open_handoff` takes a routing decision (made once per turn, kefu.routing) and a conversation's
plain values (`HandoffRequest`, no Rasa types), and returns what happened (`Opened`):

- `queued`: a waiting ticket, with the customer's place in line and the expected wait;
- `callback`: outside business hours or with the queue's waiting line full, a callback request
  (the bot keeps serving);
- `existing`: the conversation already has an open ticket (or another turn won the race to
  create one), with its place in line when it is still waiting;
- `unavailable`: PostgreSQL is unreachable or refused the input; nothing was written, and the
  bot must stay on (a pause without a ticket would strand the customer). Once the ticket is
  written, a later failure only loses its place in line (`position` 0): the customer is paused.

The action server's `action_handoff` / `action_fallback` turn the result into messages and events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal, Mapping, Optional, Sequence

from handoff.tickets import ActiveTicketExists, Ticket, TicketStore
from kefu.contracts import CallbackPayload, HandoffQueued, read_ranking, read_sentiment, to_float
from kefu.errors import BadInput, KefuError, StoreUnavailable
from kefu.pii import mask_text, mask_value
from kefu.routing.decision import RouteDecision, log_decision, with_capacity
from kefu.routing.hours import wait_minutes
from kefu.routing.settings import GENERAL, RoutingConfig

log = logging.getLogger(__name__)

TRANSCRIPT_TURNS = 20
TRANSCRIPT_CHARS = 1000
SUGGESTED_INTENTS = 3
# A conversation "has history" (its waiting ticket counts toward the queue's max_waiting) once the customer
# sent this many messages, or its first event is this old: cheap to read from the events the action has.
HISTORY_MESSAGES = 3
HISTORY_SECONDS = 120.0

Outcome = Literal["queued", "callback", "existing", "unavailable"]
StoreFactory = Callable[[], Awaitable[TicketStore]]


@dataclass(frozen=True)
class HandoffRequest:
    """What the ticket needs to know about the conversation, as plain values."""

    conversation_id: str
    channel: str
    language: str
    parse_data: Mapping[str, Any]  # the latest user message's parse result
    events: Sequence[Mapping[str, Any]]  # the tracker's events (JSON dicts)
    slots: Mapping[str, Any]
    responses: Mapping[str, Any]  # the domain's responses, for the agent's drafted answers


@dataclass(frozen=True)
class Opened:
    """The result of `open_handoff`; `decision` is the one the ticket was written for."""

    outcome: Outcome
    decision: RouteDecision
    ticket_id: Optional[str] = None
    queue: Optional[str] = None
    position: int = 0  # 1-based place among the queue's waiting tickets; 0: not waiting (an agent has it)
    wait_minutes: int = 0
    schedule: Optional[str] = None  # a callback queue's business hours, in the customer's language

    @property
    def reference(self) -> str:
        """The short ticket reference a customer can quote."""
        return (self.ticket_id or "")[:8].upper()

    def queued_payload(self) -> HandoffQueued:
        """The custom payload the web chat turns into "waiting for an agent"."""
        return {"handoff": "queued", "queue": self.queue or GENERAL, "reason": self.decision.reason,
                "ticket": self.ticket_id or "", "position": self.position, "wait_minutes": self.wait_minutes}

    def callback_payload(self) -> CallbackPayload:
        return {"callback": {"queue": self.queue or GENERAL, "ticket": self.ticket_id or ""}}


async def open_handoff(
    request: HandoffRequest, decision: RouteDecision, config: RoutingConfig, store: StoreFactory
) -> Opened:
    """Write the ticket for `decision` (or find the conversation's open one) and say where it stands."""
    try:
        tickets = await store()
        existing = await tickets.active_for_conversation(request.conversation_id)
        if existing is not None:
            return await _existing(tickets, existing.id, existing.queue, decision, config)
        if decision.route != "callback":
            decision = with_capacity(decision, await tickets.waiting_count(decision.queue or GENERAL), config)
        ticket = await tickets.create(**_ticket_fields(request, decision))
    except ActiveTicketExists as exc:  # another turn of this conversation won the race
        return await _lost_race(tickets, exc.ticket_id, decision, config)
    except (StoreUnavailable, BadInput) as exc:
        log.error("handoff ticket for %s not written: %s", request.conversation_id[:64], exc)
        return Opened("unavailable", decision)
    log_decision(request.conversation_id, decision, "action_handoff")
    if decision.route == "callback":
        schedule = config.staffing(ticket.queue).hours.describe(request.language)
        return Opened("callback", decision, ticket.id, ticket.queue, schedule=schedule)
    position, minutes = await _place(tickets, ticket.id, ticket.queue, config)
    return Opened("queued", decision, ticket.id, ticket.queue, position, minutes)


async def _existing(
    tickets: TicketStore, ticket_id: str, queue: str, decision: RouteDecision, config: RoutingConfig
) -> Opened:
    position, minutes = await _place(tickets, ticket_id, queue, config)
    return Opened("existing", decision, ticket_id, queue, position, minutes)


async def _place(tickets: TicketStore, ticket_id: str, queue: str, config: RoutingConfig) -> tuple[int, int]:
    """Place in line and expected wait; (0, 0) when they cannot be read, for the ticket exists:
    the customer must be paused with it rather than the action fail beside an orphaned ticket."""
    try:
        position = await tickets.queue_position(ticket_id)
        return position, await _wait_minutes(tickets, queue, position, config) if position else 0
    except Exception:  # any error, PostgreSQL's included: the pause matters more than the numbers
        log.exception("handoff ticket %s: its place in line is unknown", ticket_id)
        return 0, 0


async def _lost_race(tickets: TicketStore, ticket_id: str, decision: RouteDecision, config: RoutingConfig) -> Opened:
    """The winner's ticket; if it cannot be looked up, the customer still hears an agent has the case."""
    try:
        ticket: Ticket = await tickets.get(ticket_id)
        return await _existing(tickets, ticket_id, ticket.queue, decision, config)
    except KefuError:
        return Opened("existing", decision, ticket_id)


async def _wait_minutes(tickets: TicketStore, queue: str, position: int, config: RoutingConfig) -> int:
    handle = await tickets.recent_handling_seconds(queue)
    return wait_minutes(config.staffing(queue).expected_wait_seconds(position, handle))


def _ticket_fields(request: HandoffRequest, decision: RouteDecision) -> dict[str, Any]:
    return {
        "conversation_id": request.conversation_id,
        "channel": request.channel,
        "queue": decision.queue or GENERAL,
        "priority": decision.priority,
        "reason": decision.reason,
        "reason_detail": {**decision.record, "history": has_history(request.events)},
        "language": request.language,
        "status": "callback" if decision.route == "callback" else "waiting",
        "intent_ranking": read_ranking(request.parse_data.get("intent_ranking") or []),
        "sentiment_trend": sentiment_trend(request.events),
        "transcript": transcript(request.events),
        "suggestions": mask_value(suggestions(request.parse_data, request.slots, request.responses, request.language)),
    }


def has_history(events: Sequence[Mapping[str, Any]], now: Optional[float] = None) -> bool:
    """Whether the conversation existed before this request: a flood of brand-new senders saying "转人工"
    must not fill the queue and turn every real customer into a callback. Their tickets are still written
    and served; TicketStore.waiting_count leaves them out of the capacity count."""
    now = time.time() if now is None else now
    messages = sum(1 for event in events if event.get("event") == "user")
    stamps = [stamp for event in events if (stamp := to_float(event.get("timestamp"))) is not None and stamp > 0]
    return messages >= HISTORY_MESSAGES or (bool(stamps) and now - min(stamps) >= HISTORY_SECONDS)


def transcript(events: Sequence[Mapping[str, Any]], limit: int = TRANSCRIPT_TURNS) -> list[dict[str, Any]]:
    """The last `limit` customer and bot messages, personal numbers masked (kefu.pii), each cut to TRANSCRIPT_CHARS."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        text = event.get("text")
        if kind not in ("user", "bot") or not isinstance(text, str) or not text.strip():
            continue
        lines.append(
            {
                "role": "customer" if kind == "user" else "bot",
                "text": mask_text(text)[:TRANSCRIPT_CHARS],  # masked first: a cut must not leave half a number
                "ts": to_float(event.get("timestamp")) or 0.0,
            }
        )
    return lines[-limit:]


def sentiment_trend(events: Sequence[Mapping[str, Any]], limit: int = TRANSCRIPT_TURNS) -> list[dict[str, Any]]:
    """Per customer turn: the sentiment label and score NLU gave it (neutral when unknown)."""
    trend: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") != "user":
            continue
        sentiment: Mapping[str, Any] = read_sentiment((event.get("parse_data") or {}).get("sentiment")) or {}
        trend.append(
            {
                "label": sentiment.get("label", "neutral"),
                "score": sentiment.get("score") or 0.0,
                "intensity": sentiment.get("intensity") or "none",
                "ts": to_float(event.get("timestamp")) or 0.0,
            }
        )
    return trend[-limit:]


def _response_text(responses: Mapping[str, Any], name: str, language: str) -> Optional[str]:
    """The text of response `name` in `language` (the unconditioned variant is English)."""
    variants = responses.get(name) or []
    fallback = None
    for variant in variants:
        conditions = variant.get("condition") or []
        if any(c.get("name") == "language" and c.get("value") == language for c in conditions):
            return variant.get("text")
        if not conditions and fallback is None:
            fallback = variant.get("text")
    return fallback


def suggestions(
    parse_data: Mapping[str, Any], slots: Mapping[str, Any], responses: Mapping[str, Any], language: str
) -> list[dict[str, Any]]:
    """Drafts for the agent: the bot's own answer to the detected question, and the knowledge hit."""
    found: list[dict[str, Any]] = []
    intent = (parse_data.get("intent") or {}).get("name")
    ranking = read_ranking(parse_data.get("intent_ranking") or [], SUGGESTED_INTENTS) or [
        {"name": intent, "confidence": 0.0}
    ]
    for candidate in ranking:
        text = _response_text(responses, f"utter_faq_{candidate['name']}", language)
        if text:
            found.append({"source": "faq_response", "intent": candidate["name"],
                          "confidence": candidate["confidence"], "text": text})
    if slots.get("kb_source"):
        found.append({"source": slots.get("kb_source"), "confidence": slots.get("kb_confidence"),
                      "text": slots.get("kb_answer")})
    return found
