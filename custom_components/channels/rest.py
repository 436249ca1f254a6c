"""REST channel with input checks: Rasa's RestInput answers a non-object JSON body or a
non-string message with a 500; this one answers 4xx with a reason and never crashes.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from custom_components.channels import tracker_guard
from custom_components.channels.limits import cap_request_size
from kefu.config import load_settings
from kefu.errors import BadInput
from kefu.inbound import loads_json, parse_inbound
from kefu.ratelimit import RateLimits, Refusal

log = logging.getLogger(__name__)
tracker_guard.install()  # a store failure is a 503 "try again", never a silently lost message

MAX_BODY_BYTES = 256 * 1024  # 20,000 CJK characters JSON-escaped are ~120 KB


def max_message_chars() -> int:
    """Read from the environment the launcher sets (kefu.config is the source of truth)."""
    try:
        return max(1, int(os.environ.get("KEFU_MAX_MESSAGE_CHARS", "2000")))
    except ValueError:
        return 2000


def client_ip(request: Request) -> str:
    """The console's rule: the forwarded client address when Sanic trusts the proxy (its
    FORWARDED_SECRET / REAL_IP_HEADER / PROXIES_COUNT settings), else the peer address."""
    return request.remote_addr or request.ip


def too_many(refusal: Refusal) -> HTTPResponse:
    body = {"status": 429, "reason": refusal.reason, "retry_after": refusal.retry_after}
    return response.json(body, status=429, headers={"Retry-After": str(refusal.retry_after)})


def decode_json_body(request: Request) -> Any:
    """Decode a request body as UTF-8 JSON or raise BadInput with the right status."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadInput("Content-Type must be application/json", status=415)
    body = request.body or b""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"request body larger than {MAX_BODY_BYTES} bytes", status=413)
    if not body.strip():
        raise BadInput("request body is empty")
    return loads_json(body)


class KefuRestInput(InputChannel):
    """POST /webhooks/rest/webhook {"sender": ..., "message": ...} → list of bot messages."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = cap_request_size(Blueprint("kefu_rest_webhook", __name__))
        limits = RateLimits.from_settings(load_settings())

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                inbound = parse_inbound(decode_json_body(request), max_chars=max_message_chars())
            except BadInput as exc:
                log.info("rest: rejected a request: %s", exc.reason)
                return response.json({"status": exc.status, "reason": exc.reason}, status=exc.status)
            if not inbound.text:
                return response.json({"status": 400, "reason": "'message' is empty"}, status=400)
            refusal = await limits.acheck(client_ip(request), inbound.sender_id)
            if refusal is not None:
                log.info("rest: rate-limited %s: %s", client_ip(request), refusal.reason)
                return too_many(refusal)
            collector = CollectingOutputChannel()
            metadata = dict(inbound.metadata, truncated=True) if inbound.truncated else inbound.metadata
            try:
                message = UserMessage(
                    inbound.text, collector, inbound.sender_id, input_channel=self.name(), metadata=metadata
                )
                await on_new_message(message)
            except Exception:  # keep serving; the tracker keeps what was processed
                log.exception("rest: processing a message from %s failed", inbound.sender_id)
                unavailable = {"status": 503, "reason": "the assistant is temporarily unavailable",
                               "text": tracker_guard.TRY_AGAIN}  # nothing was stored: the customer sends it again
                return response.json(unavailable, status=503)
            return response.json(collector.messages)

        return hook
