"""The few calls the console makes to Rasa's HTTP API (token auth), Rasa-free.

- agent → customer: append a `bot` event with `output_channel=latest&execute_side_effects=true`,
  so Rasa sends it through the customer's own output channel (socket.io, Slack, ...);
- close: append `resume` (ConversationResumed), then run the rating question.
"""

from __future__ import annotations

import time
from typing import Any, Optional
from urllib.parse import quote

import aiohttp

from kefu.errors import KefuError, StoreUnavailable

RATING_ACTION = "utter_ask_rating"


class RasaUnavailable(StoreUnavailable):
    """Rasa's HTTP API did not answer or refused the call."""


class RasaClient:
    """An aiohttp session against one Rasa server; `open()` before use, `close()` after."""

    def __init__(self, base_url: str, token: Optional[str], timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    def __repr__(self) -> str:
        return f"RasaClient({self.base_url!r})"

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, path: str, body: Any, params: Optional[dict[str, str]] = None) -> Any:
        if self._session is None:
            raise KefuError("RasaClient.open() was not called")
        query = dict(params or {})
        if self.token:
            query["token"] = self.token
        try:
            async with self._session.post(self.base_url + path, json=body, params=query) as resp:
                if resp.status >= 300:
                    detail = (await resp.text())[:300]
                    raise RasaUnavailable(f"Rasa answered {resp.status} to POST {path.split('?')[0]}: {detail}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaUnavailable(f"cannot reach Rasa at {self.base_url}: {exc.__class__.__name__}") from exc

    @staticmethod
    def _conv(conversation_id: str) -> str:
        return "/conversations/" + quote(conversation_id, safe="")

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]], side_effects: bool) -> Any:
        params = {"include_events": "NONE"}
        if side_effects:
            params.update({"output_channel": "latest", "execute_side_effects": "true"})
        return await self._post(self._conv(conversation_id) + "/tracker/events", events, params)

    async def send_bot_message(self, conversation_id: str, text: str, agent: str) -> None:
        """Say `text` to the customer on their channel, as a bot event tagged with the agent."""
        event = {"event": "bot", "text": text, "timestamp": time.time(), "metadata": {"handoff_agent": agent}}
        await self.append_events(conversation_id, [event], side_effects=True)

    async def send_handoff_state(self, conversation_id: str, state: str, queue: str, agent: Optional[str]) -> None:
        """Tell the customer's widget "started"/"ended" (socket.io turns it into `kefu_handoff`)."""
        custom = {"handoff": state, "queue": queue, "agent": agent}
        event = {"event": "bot", "text": None, "timestamp": time.time(), "data": {"custom": custom}}
        await self.append_events(conversation_id, [event], side_effects=True)

    async def pause(self, conversation_id: str) -> None:
        await self.append_events(conversation_id, [{"event": "pause", "timestamp": time.time()}], side_effects=False)

    async def resume(self, conversation_id: str) -> None:
        await self.append_events(conversation_id, [{"event": "resume", "timestamp": time.time()}], side_effects=False)

    async def ask_rating(self, conversation_id: str, action: str = RATING_ACTION) -> list[str]:
        """Run the rating question after a resume; it goes out on the customer's channel.

        Returns the texts Rasa collected instead of sending: non-empty only for channels
        without an output channel (plain REST), whose clients poll the console for them.
        """
        answer = await self._post(
            self._conv(conversation_id) + "/execute",
            {"name": action},
            {"output_channel": "latest", "include_events": "NONE"},
        )
        messages = answer.get("messages") if isinstance(answer, dict) else None
        return [m["text"] for m in messages or [] if isinstance(m, dict) and isinstance(m.get("text"), str)]
