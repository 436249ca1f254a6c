"""The built-in console: tickets and messages already live in PostgreSQL, which the console
reads, so opening, relaying and closing need no outside call."""

from __future__ import annotations

from typing import Any

from handoff.adapters.base import AgentMessage, LiveChatAdapter, WebhookRequest
from kefu.errors import BadInput


class ConsoleAdapter(LiveChatAdapter):
    name = "console"

    def __init__(self, **_: Any) -> None:
        pass

    async def open_handoff(self, ticket: Any) -> None:
        return None

    async def relay_customer_message(self, ticket: Any, text: str) -> None:
        return None

    async def receive_agent_message(self, request: WebhookRequest) -> list[AgentMessage]:
        raise BadInput("the built-in console takes agent messages over its WebSocket, not a webhook", 404)

    async def close(self, ticket: Any, disposition: str) -> None:
        return None
