"""socket.io channel with input checks, session persistence, typing and handoff events.

Rasa's SocketIOInput trusts its payloads (a non-dict `data` or a dict `session_id`
raises inside the handler) and its output crashes on custom JSON. This subclass
validates every event, gives each browser session a room named after its session id
(so every tab of one session sees the replies, and a client that reconnects after a
server restart rejoins the room with `session_request`), and rejects bad events with a
`kefu_error` event instead of an exception.

Events the server emits to a session's room (the web chat widget's contract):

- `session_confirm` (str): the session id to store; sent in answer to `session_request`.
- `bot_uttered` ({"id", "text"?, "quick_replies"?: [{"title", "payload"}], "custom"?}): one bot
  (or, during a handoff, agent) message. `text` is Markdown; the widget renders it with
  marked + DOMPurify, so it may contain untrusted content.
- `kefu_typing` ({"state": "on"|"off"}): the assistant started / finished a turn.
- `kefu_handoff` ({"state": "queued"|"started"|"ended", "queue": str|None, "agent": str|None}):
  the conversation's human-handoff state. The widget shows "waiting for an agent",
  "connected to an agent" and "back to the assistant" for the three states.
- `kefu_error` ({"reason": str, "retry_after"?: int}): the client's last event was rejected; nothing was
  processed. `retry_after` (seconds) comes with a rate limit (kefu/ratelimit.py, docs/channels.md).

How to drive the handoff state (for `action_handoff`, the relay and the agent console):
send a bot message whose custom payload has a `handoff` key, e.g. from an action
`dispatcher.utter_message(json_message={"handoff": "started", "queue": "cards", "agent": "Li"})`
or, from outside, `POST /conversations/{id}/tracker/events?output_channel=latest&execute_side_effects=true`
with `{"event": "bot", "text": "...", "data": {"custom": {"handoff": "ended"}}}`. The legacy form
`{"handoff": {"queue": ..., "reason": ...}}` (a dict) means "queued". Agent messages are
ordinary bot messages sent the same way while the state is "started".
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional
from urllib.parse import urlsplit

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from custom_components.channels.limits import cap_request_size
from custom_components.channels.rest import client_ip, max_message_chars
from custom_components.channels.tracker_guard import TRY_AGAIN
from kefu.config import load_settings
from kefu.errors import BadInput
from kefu.inbound import Inbound, parse_inbound
from kefu.ratelimit import RateLimits

log = logging.getLogger(__name__)

# Transport limit: a bigger packet makes engine.io close the connection (no event can be
# answered then). Below it, events whose JSON is larger than MAX_EVENT_BYTES get a kefu_error.
MAX_SOCKET_MESSAGE_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 32 * 1024
SESSION_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # the widget uses uuid4().hex; room names are session ids
HANDOFF_STATES = frozenset({"queued", "started", "ended"})
TYPING_EVENT = "kefu_typing"
HANDOFF_EVENT = "kefu_handoff"
ERROR_EVENT = "kefu_error"


def handoff_event(custom: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The `kefu_handoff` payload for a custom bot message, or None if it is not one."""
    value = custom.get("handoff")
    if isinstance(value, dict):  # action_handoff's first form: {"queue": ..., "reason": ...}
        state, queue, agent = "queued", value.get("queue"), value.get("agent")
    elif isinstance(value, str) and value in HANDOFF_STATES:
        state, queue, agent = value, custom.get("queue"), custom.get("agent")
    else:
        return None
    return {
        "state": state,
        "queue": queue if isinstance(queue, str) else None,
        "agent": agent[:64] if isinstance(agent, str) else None,
    }


def origin_check(widget_origins: Iterable[str]) -> Callable[[str, Dict[str, Any]], bool]:
    """engine.io's `cors_allowed_origins`: Kefu's own origin (the host the request was sent to) or a
    configured widget host page (KEFU_WIDGET_ORIGINS). `[]` would turn engine.io's check off, and its
    same-origin default needs a WSGI URL scheme its Sanic driver does not set (it refuses every Origin)."""
    allowed = frozenset(o.lower() for o in widget_origins)

    def allowed_origin(origin: str, environ: Dict[str, Any]) -> bool:
        origin = (origin or "").lower()
        if origin in allowed:
            return True
        request = environ.get("sanic.request")
        host = (request.host if request is not None else environ.get("HTTP_HOST", "")).lower()
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host and not parts.path

    return allowed_origin


def valid_session_id(value: Any) -> Optional[str]:
    """A client-chosen session id, if it is a plain ASCII token (it names a room and a tracker)."""
    return value if isinstance(value, str) and SESSION_ID.fullmatch(value) else None


def event_size(data: Any) -> int:
    """Size of an event's data as JSON; anything that does not serialise counts as too large."""
    try:
        return len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        return MAX_EVENT_BYTES + 1


class KefuSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output, fixed for Markdown text and custom JSON.

    - A text is one message: Rasa splits on blank lines, which breaks Markdown lists and code.
    - Custom JSON is emitted as `{"custom": ...}` (Rasa's version passes it as keyword
      arguments to `emit` and raises); a `handoff` payload becomes a `kefu_handoff` event.
    """

    async def _send_message(self, socket_id: str, response: Any) -> None:
        """Every message gets an id so tabs of one session can merge their transcripts."""
        if isinstance(response, dict):
            response = {"id": uuid.uuid4().hex, **response}
        await self.sio.emit(self.bot_message_evt, response, room=socket_id)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        if text.strip():
            await self._send_message(recipient_id, {"text": text.strip()})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: Iterable[Dict[str, Any]], **kwargs: Any
    ) -> None:
        replies = [
            {"content_type": "text", "title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in buttons
            if isinstance(b, dict)
        ]
        await self._send_message(recipient_id, {"text": (text or "").strip(), "quick_replies": replies})

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: Iterable[Dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any) -> None:
        handoff = handoff_event(json_message) if isinstance(json_message, dict) else None
        if handoff is not None:
            await self.sio.emit(HANDOFF_EVENT, handoff, room=recipient_id)
        else:
            await self._send_message(recipient_id, {"custom": json_message})


class KefuSocketIOInput(SocketIOInput):
    """socket.io input: `session_request` then `user_uttered` {session_id, message}."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def get_output_channel(self) -> Optional[OutputChannel]:
        """Used for messages pushed through the HTTP API (agents, handoff): the fixed output."""
        if self.sio is None:
            return None
        return KefuSocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        namespace = self.namespace
        sio = KefuAsyncServer(
            async_mode="sanic", cors_allowed_origins=origin_check(load_settings().widget_origins),
            max_http_buffer_size=MAX_SOCKET_MESSAGE_BYTES,
        )
        hook = cap_request_size(SocketBlueprint(sio, self.socketio_path, "kefu_socketio_webhook", __name__))
        self.sio = sio
        limits = RateLimits.from_settings(load_settings())

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: Optional[Dict] = None, auth: Any = None) -> bool:
            if environ is None:  # a client sent an event named "connect"
                await self._reject(sio, sid, "unknown event")
                return True
            request = environ.get("sanic.request")
            async with sio.session(sid, namespace=namespace) as session:  # the rate limits' client address
                session["ip"] = client_ip(request) if request is not None else environ.get("REMOTE_ADDR", "")
            return True

        @sio.on("*", namespace=namespace)
        async def unknown_event(event: Any, sid: str, *_args: Any) -> None:
            await self._reject(sio, sid, "unknown event")

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None, *_extra: Any) -> None:
            wanted = data.get("session_id") if isinstance(data, dict) else None
            session_id = valid_session_id(wanted) or uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None, *_extra: Any) -> None:
            inbound = await self._inbound(sio, sid, data)
            if inbound is None or not inbound.text:
                return
            session = await sio.get_session(sid, namespace=namespace)
            refusal = await limits.acheck(session.get("ip", ""), inbound.sender_id)
            if refusal is not None:
                await self._reject(sio, sid, refusal.reason, retry_after=refusal.retry_after)
                return
            await self._answer(sio, sid, inbound, on_new_message)

        return hook

    async def _reject(self, sio: AsyncServer, sid: str, reason: str, **extra: Any) -> None:
        log.info("socketio: rejected an event: %s", reason)
        await sio.emit(ERROR_EVENT, {"reason": reason, **extra}, room=sid, namespace=self.namespace)

    async def _inbound(self, sio: AsyncServer, sid: str, data: Any) -> Optional[Inbound]:
        """The checked message of a `user_uttered` event; None (after a `kefu_error`) when it is refused."""
        if not isinstance(data, dict):
            await self._reject(sio, sid, "the event data must be an object")
            return None
        if event_size(data) > MAX_EVENT_BYTES:
            await self._reject(sio, sid, f"the event is larger than {MAX_EVENT_BYTES} bytes")
            return None
        payload = dict(data)
        if self.session_persistence:
            session_id = valid_session_id(data.get("session_id"))
            if session_id is not None and session_id not in sio.rooms(sid, namespace=self.namespace):
                await self._reject(sio, sid, "send session_request with this session id first")
                return None
            payload["sender"] = session_id
        else:
            payload["sender"] = sid
        metadata = payload.get(self.metadata_key)
        if metadata is not None and not isinstance(metadata, dict):
            await self._reject(sio, sid, f"'{self.metadata_key}' must be an object")
            return None
        payload["metadata"] = metadata or {}
        try:
            return parse_inbound(payload, max_chars=max_message_chars())
        except BadInput as exc:
            await self._reject(sio, sid, exc.reason)
            return None

    async def _answer(self, sio: AsyncServer, sid: str, inbound: Inbound,
                      on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """One turn between `kefu_typing` on and off; a failure is a `kefu_error`, never a dropped socket."""
        namespace = self.namespace
        room = inbound.sender_id if self.session_persistence else sid
        output = KefuSocketIOOutput(sio, self.bot_message_evt)
        await sio.emit(TYPING_EVENT, {"state": "on"}, room=room, namespace=namespace)
        try:
            await on_new_message(UserMessage(inbound.text, output, inbound.sender_id, input_channel=self.name(),
                                             metadata=inbound.metadata))
        except Exception:
            log.exception("socketio: processing a message from %s failed", inbound.sender_id)
            await sio.emit(
                ERROR_EVENT, {"reason": "the assistant is temporarily unavailable", "text": TRY_AGAIN}, room=sid,
                namespace=namespace,
            )
        finally:
            await sio.emit(TYPING_EVENT, {"state": "off"}, room=room, namespace=namespace)


class KefuAsyncServer(AsyncServer):
    """An AsyncServer that answers undecodable packets (malformed JSON, unknown types) with
    `kefu_error` instead of a logged traceback. Hooks python-socketio's packet dispatcher."""

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:  # RecursionError: deep JSON
            log.info("socketio: dropped an undecodable packet (%s)", type(exc).__name__)
            sid = self.manager.sid_from_eio_sid(eio_sid, "/")
            if sid is not None:
                await self.emit(ERROR_EVENT, {"reason": "the packet could not be decoded"}, room=sid)
