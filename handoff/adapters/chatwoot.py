"""Chatwoot as the agents' tool, through its Application API (agent-bot style).

On handoff the bot creates the conversation in an API inbox as `pending` (the bot's state),
leaves agents a private note with the briefing, assigns the team of the ticket's queue and
toggles the status to `open`; from then on the bot stays silent (Rasa is paused) and messages
are relayed both ways: customer messages are posted as `incoming`, and Chatwoot's webhook
(`message_created`, outgoing, public, sent by a user) brings agent replies back; a
`conversation_status_changed` to `resolved` closes the ticket.

The webhook URL carries a secret (`/handoff/webhooks/chatwoot?token=...`), compared in
constant time. Options (KEFU_CHATWOOT_*): url, token (api_access_token of the bot or an
agent), account_id, inbox_id, webhook_token, teams ("senior=3,cards=4").
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Optional

from handoff.adapters.base import AdapterLinks, AgentMessage, LiveChatAdapter, WebhookRequest, handoff_summary
from handoff.adapters.http import JsonClient
from kefu.errors import BadInput, ConfigError
from kefu.pii import mask_text


def parse_teams(raw: str) -> dict[str, int]:
    teams: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (raw or "").split(","))):
        queue, _, team = part.partition("=")
        if not team.strip().isdigit():
            raise ConfigError(f"KEFU_CHATWOOT_TEAMS must look like 'senior=3,cards=4', got {part!r}")
        teams[queue.strip()] = int(team)
    return teams


class ChatwootAdapter(LiveChatAdapter):
    name = "chatwoot"

    def __init__(self, links: AdapterLinks, url: str = "", token: str = "", account_id: str = "",
                 inbox_id: str = "", webhook_token: str = "", teams: str = "", **_: Any) -> None:
        missing = [k for k, v in {"url": url, "token": token, "account_id": account_id, "inbox_id": inbox_id,
                                  "webhook_token": webhook_token}.items() if not v]
        if missing:
            raise ConfigError("the chatwoot adapter needs " + ", ".join(f"KEFU_CHATWOOT_{m.upper()}" for m in missing))
        if not str(account_id).isdigit() or not str(inbox_id).isdigit():
            raise ConfigError("KEFU_CHATWOOT_ACCOUNT_ID and KEFU_CHATWOOT_INBOX_ID must be numbers")
        self.links = links
        self.account = f"/api/v1/accounts/{int(account_id)}"
        self.inbox_id = int(inbox_id)
        self.webhook_token = webhook_token
        self.teams = parse_teams(teams)
        self.http = JsonClient(url, {"api_access_token": token})

    def __repr__(self) -> str:
        return f"ChatwootAdapter({self.http.base_url!r})"

    async def start(self) -> None:
        await self.http.start()

    async def stop(self) -> None:
        await self.http.stop()

    async def _conversation(self, ticket: Any) -> Optional[str]:
        return await self.links.external_id(self.name, ticket.id)

    async def open_handoff(self, ticket: Any) -> None:
        if await self._conversation(ticket) is not None:
            return
        contact = await self.http.post(
            f"{self.account}/contacts",
            {"inbox_id": self.inbox_id, "name": mask_text(f"Kefu {ticket.conversation_id}")[:120],
             "identifier": f"kefu:{ticket.id}"},
        )
        payload = contact.get("payload", contact)
        contact_id = payload["contact"]["id"]
        source_id = (payload.get("contact_inbox") or {}).get("source_id")
        conversation = await self.http.post(
            f"{self.account}/conversations",
            {"inbox_id": self.inbox_id, "contact_id": contact_id, "source_id": source_id, "status": "pending",
             "custom_attributes": {"kefu_ticket": ticket.id, "queue": ticket.queue, "reason": ticket.reason}},
        )
        conv = str(conversation["id"])
        await self.links.link(self.name, ticket.id, conv)
        path = f"{self.account}/conversations/{conv}"
        await self.http.post(f"{path}/messages",
                             {"content": handoff_summary(ticket), "message_type": "outgoing", "private": True})
        if ticket.queue in self.teams:
            await self.http.post(f"{path}/assignments", {"team_id": self.teams[ticket.queue]})
        await self.http.post(f"{path}/toggle_status", {"status": "open"})

    async def relay_customer_message(self, ticket: Any, text: str) -> None:
        conv = await self._conversation(ticket)
        if conv is None:
            await self.open_handoff(ticket)
            conv = await self._conversation(ticket)
        await self.http.post(f"{self.account}/conversations/{conv}/messages",
                             {"content": mask_text(text), "message_type": "incoming", "private": False})

    async def receive_agent_message(self, request: WebhookRequest) -> list[AgentMessage]:
        sent = request.query.get("token", "")
        if not hmac.compare_digest(sent.encode(), self.webhook_token.encode()):
            raise BadInput("wrong or missing webhook token", 401)
        try:
            event = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput("the webhook body is not JSON") from exc
        if not isinstance(event, dict):
            raise BadInput("the webhook body must be a JSON object")
        kind = event.get("event")
        # conversation_status_changed carries the conversation itself; message_created nests it
        conversation = event if kind == "conversation_status_changed" else event.get("conversation")
        conv_id = conversation.get("id") if isinstance(conversation, dict) else None
        if not isinstance(conv_id, int | str) or isinstance(conv_id, bool):
            return []
        ticket_id = await self.links.ticket_id(self.name, str(conv_id))
        if ticket_id is None:
            return []
        if kind == "conversation_status_changed":
            if conversation.get("status") == "resolved":
                return [AgentMessage(ticket_id, "chatwoot", close_disposition="resolved")]
            return []
        if kind != "message_created" or event.get("private") or event.get("message_type") not in ("outgoing", 1):
            return []
        sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
        if sender.get("type") not in ("user", "agent"):
            return []  # our own bot notes and echoes
        text = event.get("content")
        if not isinstance(text, str) or not text.strip():
            return []
        agent = f"chatwoot:{str(sender.get('name') or sender.get('id') or 'agent')[:80]}"
        return [AgentMessage(ticket_id, agent, text)]

    async def close(self, ticket: Any, disposition: str) -> None:
        conv = await self._conversation(ticket)
        if conv is not None:
            await self.http.post(f"{self.account}/conversations/{conv}/toggle_status", {"status": "resolved"})
