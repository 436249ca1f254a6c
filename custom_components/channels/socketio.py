"""socket.io channel with input checks and session persistence across reloads and tabs.

Rasa's SocketIOInput trusts its payloads (a non-dict `data` or a dict `session_id`
raises inside the handler). This subclass validates every event, gives each browser
session a room named after its session id (so every tab of one session sees the
replies), and drops bad events with a log line instead of an exception.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from custom_components.channels.rest import max_message_chars
from kefu.errors import BadInput
from kefu.inbound import optional_str, parse_inbound

log = logging.getLogger(__name__)

MAX_SOCKET_MESSAGE_BYTES = 64 * 1024


class KefuSocketIOInput(SocketIOInput):
    """socket.io input: `session_request` then `user_uttered` {session_id, message}."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(
            async_mode="sanic", cors_allowed_origins=[], max_http_buffer_size=MAX_SOCKET_MESSAGE_BYTES
        )
        hook = SocketBlueprint(sio, self.socketio_path, "kefu_socketio_webhook", __name__)
        self.sio = sio

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: Dict, auth: Optional[Dict] = None) -> bool:
            return True

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any = None, *_extra: Any) -> None:
            wanted = data.get("session_id") if isinstance(data, dict) else None
            session_id = optional_str(wanted, limit=64) or uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None, *_extra: Any) -> None:
            if not isinstance(data, dict):
                log.info("socketio: dropped an event whose data is not an object")
                reason = {"reason": "the event data must be an object"}
                await sio.emit("kefu_error", reason, room=sid, namespace=self.namespace)
                return
            payload = dict(data)
            if self.session_persistence:
                payload["sender"] = optional_str(data.get("session_id"), limit=64)
            else:
                payload["sender"] = sid
            metadata = payload.get(self.metadata_key)
            payload["metadata"] = metadata if isinstance(metadata, dict) else {}
            try:
                inbound = parse_inbound(payload, max_chars=max_message_chars())
            except BadInput as exc:
                log.info("socketio: dropped an event: %s", exc.reason)
                await sio.emit("kefu_error", {"reason": exc.reason}, room=sid, namespace=self.namespace)
                return
            if not inbound.text:
                return
            output = SocketIOOutput(sio, self.bot_message_evt)
            try:
                await on_new_message(
                    UserMessage(
                        inbound.text, output, inbound.sender_id, input_channel=self.name(), metadata=inbound.metadata
                    )
                )
            except Exception:
                log.exception("socketio: processing a message from %s failed", inbound.sender_id)
                await sio.emit(
                    "kefu_error", {"reason": "the assistant is temporarily unavailable"}, room=sid,
                    namespace=self.namespace,
                )

        return hook
