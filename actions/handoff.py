"""Handoff to people: the action server's glue around handoff.opening.

`action_handoff` (rules for ask_human / complain / insult, and RoutingPolicy for every other
human route) takes the turn's routing decision — RoutingPolicy's record in the `routing` slot
when the policy sent the turn here, decided now when a rule did — and lets
`handoff.opening.open_handoff` write the ticket (capacity, queue position, expected wait,
callback outside business hours or with a full queue). This module only turns the result
into what the customer hears and the events: ConversationPaused for a live handoff, none for
a callback (the bot keeps serving) or when PostgreSQL is unreachable (a pause without a
ticket would strand the customer).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of, latest_intent
from actions.services import ticket_store
from handoff.opening import HandoffRequest, Opened, open_handoff
from kefu.config import load_settings
from kefu.errors import BadInput, StoreUnavailable
from kefu.routing import turns
from kefu.routing.decision import ROUTING_SLOT, RouteDecision
from kefu.routing.features import TurnContext
from kefu.routing.queues import handoff_response
from kefu.routing.router import route_turn as choose_route
from kefu.routing.settings import GENERAL, RoutingConfig, load_routing

log = logging.getLogger(__name__)


def routing_config() -> RoutingConfig:
    return load_routing(load_settings().routing_file)


def route_turn(tracker: Tracker, config: RoutingConfig) -> RouteDecision:
    """The routing decision for the latest user turn.

    RoutingPolicy's own, from the `routing` slot, when it made one for this very message; the
    rules (ask_human, complain, insult, nlu_fallback, out_of_scope) leave none, and then it is
    decided here from the same signals the policy would have read.
    """
    recorded = RouteDecision.from_record(tracker.slots.get(ROUTING_SLOT), turns.latest_turn(tracker.events))
    if recorded is not None:
        return recorded
    in_form = bool((tracker.active_loop or {}).get("name"))
    signals = turns.turn_signals(tracker.latest_message or {}, tracker.slots, tracker.events, config, in_form)
    latest = tracker.latest_message or {}
    context = TurnContext(text=str(latest.get("text") or ""), entities=len(latest.get("entities") or []),
                          channel=tracker.get_latest_input_channel(),
                          turn_count=max(1, turns.user_turns(tracker.events)))
    # the same router as the policy: the cascade, or the approved tree when routing.yml selects one
    return choose_route(signals, context, config, load_settings().routing_file)


def handoff_request(tracker: Tracker, domain: Dict[str, Any]) -> HandoffRequest:
    return HandoffRequest(
        conversation_id=tracker.sender_id,
        channel=(tracker.get_latest_input_channel() or "unknown")[:64],
        language=language_of(tracker),
        parse_data=tracker.latest_message or {},
        events=tracker.events,
        slots=tracker.slots,
        responses=domain.get("responses") or {},
    )


async def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    domain: Dict[str, Any],
    decision: RouteDecision,
    config: RoutingConfig,
) -> List[Dict[str, Any]]:
    """Open the handoff for `decision` and tell the customer; shared by handoff and fallback."""
    events: List[Dict[str, Any]] = []
    if (tracker.active_loop or {}).get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    opened = await open_handoff(handoff_request(tracker, domain), decision, config, ticket_store)
    return [*events, *announce(dispatcher, opened)]


def announce(dispatcher: CollectingDispatcher, opened: Opened) -> List[Dict[str, Any]]:
    """The customer's messages and the events for an opened (or refused) handoff."""
    if opened.outcome == "unavailable":
        dispatcher.utter_message(response="utter_handoff_unavailable")
        return []
    if opened.outcome == "existing":
        if opened.position:
            dispatcher.utter_message(response="utter_handoff_queue", position=opened.position,
                                     minutes=opened.wait_minutes)
        else:
            dispatcher.utter_message(response="utter_handoff_already")
        return pause(opened.ticket_id or "")
    if opened.outcome == "callback":
        dispatcher.utter_message(response="utter_handoff_callback", json_message=opened.callback_payload(),
                                 schedule=opened.schedule, reference=opened.reference)
        return [SlotSet("handoff_ticket", opened.ticket_id)]
    # the web chat shows "waiting for an agent" on this custom payload
    dispatcher.utter_message(response=handoff_response(opened.decision.reason), json_message=opened.queued_payload())
    if opened.position:  # 0: the ticket is written but its place in line could not be read
        dispatcher.utter_message(response="utter_handoff_queue", position=opened.position,
                                 minutes=opened.wait_minutes)
    return pause(opened.ticket_id or "")


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
    return RouteDecision("human", GENERAL, "explicit_request", record, decision.priority)  # type: ignore[arg-type]


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
