"""Slack as the agents' tool: one thread per handoff in an agents' channel (Web API + Events API).

`open_handoff` posts the briefing with `chat.postMessage` and remembers the thread's `ts`;
customer messages go into that thread; the Events API webhook (`message` events with a
`thread_ts`, from a person, not a bot) brings agent replies back to the customer. A reply
`!close [disposition]` closes the ticket with one of the console's dispositions (another is
refused in the thread). Every webhook is verified: `X-Slack-Signature` =
`v0=` + HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`), timestamp within 5 minutes;
Slack's retries of an already handled event id are ignored.

Options (KEFU_SLACK_*): bot_token (xoxb-, scope chat:write), signing_secret, channel (id),
api_url (default https://slack.com/api).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from typing import Any, Optional

from handoff.adapters.base import AdapterLinks, AgentMessage, LiveChatAdapter, WebhookRequest, handoff_summary
from handoff.adapters.http import AdapterUnavailable, JsonClient
from kefu.errors import BadInput, ConfigError
from kefu.pii import mask_text

MAX_SKEW = 300
SEEN_EVENTS = 2048


def slack_escape(text: str) -> str:
    """Slack control characters: customer text must not become <!channel> mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_signature(secret: str, request: WebhookRequest, now: Optional[float] = None) -> None:
    """Raise BadInput(401) unless the request carries a fresh, valid Slack v0 signature."""
    timestamp = request.header("X-Slack-Request-Timestamp")
    signature = request.header("X-Slack-Signature")
    if not timestamp.isdigit() or not signature:
        raise BadInput("missing Slack signature headers", 401)
    if abs((now or time.time()) - int(timestamp)) > MAX_SKEW:
        raise BadInput("stale Slack request timestamp", 401)
    if not hmac.compare_digest(sign(secret, timestamp, request.body).encode(), signature.encode()):
        raise BadInput("bad Slack signature", 401)


class SlackAdapter(LiveChatAdapter):
    name = "slack"

    def __init__(self, links: AdapterLinks, bot_token: str = "", signing_secret: str = "", channel: str = "",
                 api_url: str = "https://slack.com/api", **_: Any) -> None:
        missing = [k for k, v in {"bot_token": bot_token, "signing_secret": signing_secret, "channel": channel}.items()
                   if not v]
        if missing:
            raise ConfigError("the slack adapter needs " + ", ".join(f"KEFU_SLACK_{m.upper()}" for m in missing))
        self.links = links
        self.channel = channel
        self.signing_secret = signing_secret
        self.http = JsonClient(api_url, {"Authorization": f"Bearer {bot_token}"})
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"SlackAdapter(channel={self.channel!r})"

    async def start(self) -> None:
        await self.http.start()

    async def stop(self) -> None:
        await self.http.stop()

    async def _post(self, text: str, thread_ts: Optional[str] = None) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": self.channel, "text": text}
        if thread_ts:
            body["thread_ts"] = thread_ts
        data = await self.http.post("/chat.postMessage", body)
        if not isinstance(data, dict) or not data.get("ok"):
            raise AdapterUnavailable(f"Slack chat.postMessage failed: {str(data)[:200]}")
        return data

    async def open_handoff(self, ticket: Any) -> None:
        if await self.links.external_id(self.name, ticket.id) is not None:
            return
        posted = await self._post(slack_escape(handoff_summary(ticket)))
        await self.links.link(self.name, ticket.id, str(posted["ts"]))

    async def relay_customer_message(self, ticket: Any, text: str) -> None:
        thread = await self.links.external_id(self.name, ticket.id)
        if thread is None:
            await self.open_handoff(ticket)
            thread = await self.links.external_id(self.name, ticket.id)
        await self._post(f"customer: {slack_escape(mask_text(text))}", thread)

    def immediate_reply(self, request: WebhookRequest) -> Optional[dict[str, Any]]:
        try:
            event = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(event, dict) and event.get("type") == "url_verification":
            return {"challenge": str(event.get("challenge", ""))[:200]}
        return None

    async def receive_agent_message(self, request: WebhookRequest) -> list[AgentMessage]:
        verify_signature(self.signing_secret, request)
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput("the webhook body is not JSON") from exc
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return []
        event_id = str(payload.get("event_id", ""))
        if event_id:
            if event_id in self._seen:
                return []
            self._seen[event_id] = None
            while len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
        event = payload.get("event")
        if not isinstance(event, dict) or event.get("type") != "message":
            return []
        if event.get("bot_id") or event.get("subtype") or event.get("channel") != self.channel:
            return []
        thread, text = event.get("thread_ts"), event.get("text")
        if not isinstance(thread, str) or not isinstance(text, str) or not text.strip():
            return []
        ticket_id = await self.links.ticket_id(self.name, thread)
        if ticket_id is None:
            return []
        agent = f"slack:{str(event.get('user') or 'agent')[:40]}"
        parts = text.split()
        if parts[0] == "!close":  # the relay checks the disposition against the console's list
            return [AgentMessage(ticket_id, agent, close_disposition=" ".join(parts[1:]) or "resolved")]
        return [AgentMessage(ticket_id, agent, _unescape(text))]

    async def close(self, ticket: Any, disposition: str) -> None:
        thread = await self.links.external_id(self.name, ticket.id)
        if thread is not None:
            await self._post(f"ticket closed: {slack_escape(disposition)}", thread)

    async def tell_agent(self, ticket: Any, text: str) -> None:
        thread = await self.links.external_id(self.name, ticket.id)
        if thread is not None:
            await self._post(slack_escape(text), thread)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
