"""The one interface every live-chat tool implements, and the ticket ↔ external-id links.

The console process drives adapters: it opens a handoff in the tool when a ticket appears,
relays each customer message, turns the tool's webhooks into `AgentMessage`s (which the
relay sends to the customer through Rasa), and closes the tool's thread/conversation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from psycopg_pool import AsyncConnectionPool

from kefu.pii import mask_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_adapter_links (
    adapter text NOT NULL,
    ticket_id text NOT NULL,
    external_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (adapter, ticket_id),
    UNIQUE (adapter, external_id)
);
"""


@dataclass(frozen=True)
class WebhookRequest:
    """What an adapter sees of an incoming webhook: raw body (signatures cover it), headers, query."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


@dataclass(frozen=True)
class AgentMessage:
    """Something an agent did in the external tool: a reply, or a close (with disposition)."""

    ticket_id: str
    agent: str
    text: str = ""
    close_disposition: Optional[str] = None


class AdapterLinks:
    """Which external conversation/thread belongs to which ticket (survives restarts)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def link(self, adapter: str, ticket_id: str, external_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO handoff_adapter_links (adapter, ticket_id, external_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (adapter, ticket_id) DO NOTHING",
                (adapter, ticket_id, external_id),
            )

    async def external_id(self, adapter: str, ticket_id: str) -> Optional[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT external_id FROM handoff_adapter_links WHERE adapter = %s AND ticket_id = %s",
                (adapter, ticket_id),
            )
            row = await cur.fetchone()
        return row[0] if row else None

    async def ticket_id(self, adapter: str, external_id: str) -> Optional[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT ticket_id FROM handoff_adapter_links WHERE adapter = %s AND external_id = %s",
                (adapter, external_id),
            )
            row = await cur.fetchone()
        return row[0] if row else None


class LiveChatAdapter(ABC):
    """Open a handoff, relay customer messages, receive agent messages, close."""

    name: str = "abstract"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open HTTP sessions etc.; called once when the console starts."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what `start` opened."""

    @abstractmethod
    async def open_handoff(self, ticket: Any) -> None:
        """Make the ticket visible to agents in the tool (idempotent: called again after a restart)."""

    @abstractmethod
    async def relay_customer_message(self, ticket: Any, text: str) -> None:
        """Show a customer message (already stored in the ticket) to the agents."""

    @abstractmethod
    async def receive_agent_message(self, request: WebhookRequest) -> list[AgentMessage]:
        """Verify and parse one webhook from the tool; raises BadInput (with .status) when rejected."""

    @abstractmethod
    async def close(self, ticket: Any, disposition: str) -> None:
        """Tell the tool the ticket is closed."""

    async def tell_agent(self, ticket: Any, text: str) -> None:  # noqa: B027 - tools without commands
        """Answer the agents in the ticket's thread, e.g. why a command was refused."""

    def immediate_reply(self, request: WebhookRequest) -> Optional[dict[str, Any]]:
        """A body the tool expects back from a verified webhook (Slack's url_verification)."""
        return None


def handoff_summary(ticket: Any, max_lines: int = 10) -> str:
    """A plain-text briefing for agents in an external tool: queue, reason and the transcript tail.

    Personal numbers are masked here too (kefu.pii), for tickets written before transcripts were.
    """
    lines = [
        f"Kefu handoff {ticket.id} · queue {ticket.queue} · reason {ticket.reason} · priority {ticket.priority}"
        f" · {ticket.language} · channel {ticket.channel}"
    ]
    for turn in (ticket.transcript or [])[-max_lines:]:
        if isinstance(turn, dict) and isinstance(turn.get("text"), str):
            lines.append(f"{turn.get('role', '?')}: {mask_text(turn['text'])[:500]}")
    return "\n".join(lines)
