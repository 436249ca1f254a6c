"""Customer ↔ agent relay while a conversation is paused.

customer → agent: Rasa keeps storing `user` events of a paused conversation in its SQL
tracker store. `Relay.poll_once` reads new ones for every open ticket (one query, a
per-ticket cursor persisted in `handoff_relay_cursor`, so a console restart resumes where it
stopped), appends them to the ticket (`add_message(role="customer")`), queues them for the
live-chat adapter in the durable outbox (handoff/relay_outbox.py: same transaction as the
cursor; sent in order per ticket, retried with exponential backoff while the tool is down)
and wakes the agent's WebSocket.

agent → customer: `Relay.agent_says` stores the message, then appends a `bot` event through
Rasa's HTTP API with `output_channel=latest&execute_side_effects=true`, which sends it over
the customer's own channel (socket.io, Slack, ...). Plain REST has no output channel: its
clients poll `GET /handoff/messages?conversation_id=...&after=<id>` on the console, which
returns the agent's messages and, after the close, the rating question (role `bot`).

close: resume the bot (`ConversationResumed`), close the ticket, ask for the rating. A close from
a live-chat tool takes the console's dispositions only; another is refused in the tool's thread.
Delivery is at least once: a crash between storing a message and moving the cursor repeats it
in the ticket; a crash between the tool's answer and the outbox's `sent` mark repeats it in the tool.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from handoff.adapters.base import AgentMessage, LiveChatAdapter
from handoff.console.pages import DISPOSITIONS
from handoff.rasa_api import RATING_ACTION, RasaClient
from handoff.relay_outbox import Outbox
from handoff.tracker_events import TrackerEvents
from kefu.errors import BadInput, KefuError, NotFound
from kefu.pii import mask_text

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_relay_cursor (
    ticket_id text PRIMARY KEY,
    last_event_id bigint NOT NULL
);
"""


class Hub:
    """Wakes the WebSocket loops watching a ticket (and the queue views) in this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, key: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        return event

    def unsubscribe(self, key: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[key]

    def notify(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()


class Relay:
    """Moves messages between Rasa's conversations, the ticket store and the adapter."""

    def __init__(
        self,
        store: Any,
        events: TrackerEvents,
        rasa: RasaClient,
        adapter: LiveChatAdapter,
        hub: Hub,
        interval: float = 0.25,
        rating_action: str = RATING_ACTION,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.store = store
        self.events = events
        self.rasa = rasa
        self.adapter = adapter
        self.hub = hub
        self.interval = interval
        self.rating_action = rating_action
        self._opened: set[str] = set()
        self.outbox = Outbox(events.pool, adapter.name, backoff_s, max_backoff_s)

    async def migrate(self) -> None:
        async with self.events.pool.connection() as conn:
            await conn.execute(SCHEMA)
        await self.outbox.migrate()

    async def _cursors(self, ticket_ids: list[str]) -> dict[str, int]:
        async with self.events.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT ticket_id, last_event_id FROM handoff_relay_cursor WHERE ticket_id = ANY(%s)", (ticket_ids,)
            )
            return {row[0]: int(row[1]) for row in await cur.fetchall()}

    async def _advance(self, ticket_id: str, event_id: int) -> None:
        async with self.events.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO handoff_relay_cursor (ticket_id, last_event_id) VALUES (%s, %s) ON CONFLICT (ticket_id) "
                "DO UPDATE SET last_event_id = GREATEST(handoff_relay_cursor.last_event_id, EXCLUDED.last_event_id)",
                (ticket_id, event_id),
            )

    async def _queue(self, ticket_id: str, event_id: int, text: str) -> None:
        """Outbox row and cursor move together: a message is queued for the tool exactly when it is consumed."""
        async with self.events.pool.connection() as conn, conn.transaction():
            await self.outbox.enqueue(conn, ticket_id, text)
            await conn.execute(
                "INSERT INTO handoff_relay_cursor (ticket_id, last_event_id) VALUES (%s, %s) ON CONFLICT (ticket_id) "
                "DO UPDATE SET last_event_id = GREATEST(handoff_relay_cursor.last_event_id, EXCLUDED.last_event_id)",
                (ticket_id, event_id),
            )

    async def _show(self, ticket_id: str, text: str) -> None:
        """The outbox's sender: one customer message to the live-chat tool (KefuError → retried later)."""
        await self.adapter.relay_customer_message(await self.store.get(ticket_id), text)

    async def poll_once(self) -> int:
        """Relay every new customer message of every open ticket, then drain the outbox; returns how many."""
        relayed = await self._read_new()
        await self.outbox.drain(self._show)
        return relayed

    async def _read_new(self) -> int:
        tickets = await self.store.list_open()
        if not tickets:
            return 0
        for ticket in tickets:
            if ticket.id not in self._opened:
                try:
                    await self.adapter.open_handoff(ticket)
                except KefuError as exc:  # the tool is down: retry next round, keep relaying the rest
                    log.warning("relay: %s could not open ticket %s: %s", self.adapter.name, ticket.id, exc)
                    continue
                self._opened.add(ticket.id)
                self.hub.notify("queues")
        by_conversation = {t.conversation_id: t for t in tickets}
        cursors = await self._cursors([t.id for t in tickets])
        wanted = [(t.conversation_id, cursors.get(t.id, 0), t.created_at.timestamp()) for t in by_conversation.values()]
        relayed = 0
        for event in await self.events.user_events_after(wanted):
            ticket = by_conversation[event.sender_id]
            text = mask_text(event.text)  # agents and the ticket see personal numbers masked (kefu.pii)
            try:
                await self.store.add_message(ticket.id, "customer", text)
            except (BadInput, NotFound) as exc:  # cannot ever be stored: skip it rather than block the queue
                log.warning("relay: dropped event %s of ticket %s: %s", event.id, ticket.id, exc)
                await self._advance(ticket.id, event.id)
                continue
            await self._queue(ticket.id, event.id, text)
            self.hub.notify(ticket.id)
            relayed += 1
        return relayed

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll until `stopping` is set; errors are logged and retried, never fatal."""
        while not stopping.is_set():
            try:
                await self.poll_once()
            except Exception:  # keep relaying after a database hiccup
                log.exception("relay: poll failed; retrying")
            try:
                await asyncio.wait_for(stopping.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass

    async def announce(self, ticket: Any, state: str) -> None:
        """Best effort: show the customer that an agent joined ("started") or left ("ended")."""
        try:
            await self.rasa.send_handoff_state(ticket.conversation_id, state, ticket.queue, ticket.agent)
        except KefuError as exc:
            log.warning("relay: could not announce %s for %s: %s", state, ticket.conversation_id, exc)

    async def claimed(self, ticket: Any) -> None:
        """After a successful claim: wake the views and tell the customer an agent is here."""
        self.hub.notify(ticket.id)
        self.hub.notify("queues")
        await self.announce(ticket, "started")

    async def agent_says(self, ticket: Any, agent: str, text: str) -> int:
        """Store the agent's message (masked), then send it as written to the customer's channel through Rasa."""
        message_id = await self.store.add_message(ticket.id, "agent", mask_text(text))
        self.hub.notify(ticket.id)
        await self.rasa.send_bot_message(ticket.conversation_id, text, agent)
        return message_id

    async def close(self, ticket: Any, agent: str, disposition: str) -> Any:
        """Resume the bot, close the ticket, ask the customer for a rating, tell the adapter."""
        await self.rasa.resume(ticket.conversation_id)
        closed = await self.store.close_ticket(ticket.id, agent, disposition)
        await self.announce(closed, "ended")
        self.hub.notify(ticket.id)
        self.hub.notify("queues")
        try:
            for text in await self.rasa.ask_rating(ticket.conversation_id, self.rating_action):
                await self.store.add_message(ticket.id, "bot", text)  # for REST clients that poll
        except KefuError as exc:
            log.warning("relay: the rating question for %s failed: %s", ticket.conversation_id, exc)
        try:
            await self.adapter.close(closed, disposition)
        except KefuError as exc:
            log.warning("relay: %s could not close ticket %s: %s", self.adapter.name, ticket.id, exc)
        return closed

    async def _refuse(self, ticket: Any, why: str) -> None:
        """A command the tool's agent got wrong: nothing changes, the agent is told why."""
        log.warning("relay: refused a command from %s on ticket %s: %s", self.adapter.name, ticket.id, why)
        try:
            await self.adapter.tell_agent(ticket, why)
        except KefuError as exc:
            log.warning("relay: %s could not tell the agent of ticket %s: %s", self.adapter.name, ticket.id, exc)

    async def from_adapter(self, message: AgentMessage) -> Optional[Any]:
        """Apply what an agent did in an external tool: claim if needed, reply, or close."""
        ticket = await self.store.get(message.ticket_id)
        if ticket.status not in ("waiting", "assigned"):
            return None
        if message.close_disposition is not None and message.close_disposition not in DISPOSITIONS:
            await self._refuse(ticket, f"unknown disposition {message.close_disposition[:40]!r}: "
                                       f"close with one of {', '.join(DISPOSITIONS)}")
            return ticket
        if ticket.status == "waiting":
            ticket = await self.store.claim(ticket.id, message.agent)
            await self.claimed(ticket)
        if message.text:
            await self.agent_says(ticket, message.agent, message.text)
        if message.close_disposition:
            return await self.close(ticket, ticket.agent or message.agent, message.close_disposition)
        return ticket
