"""The Sanic blueprint of the Official Account and WeCom app callbacks.

GET verifies the URL (echostr), POST checks timestamp, signature and envelope before the
body is looked at; every rejection is a 4xx with a reason, and neither secrets nor message
bodies are logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from custom_components.channels.limits import cap_request_size
from custom_components.channels.wechat.common import check_timestamp, parse_xml, require_params
from kefu.errors import BadInput, KefuError

if TYPE_CHECKING:
    from custom_components.channels.wechat.base import OnNewMessage, WeChatInputBase

log = logging.getLogger(__name__)

XML_TYPES = ("text/xml", "application/xml")


def reject(channel_name: str, exc: BadInput) -> HTTPResponse:
    log.info("%s: rejected a request: %s", channel_name, exc.reason)
    return response.text(exc.reason, status=exc.status)


def build_blueprint(channel: WeChatInputBase, on_new_message: OnNewMessage) -> Blueprint:
    hook = cap_request_size(Blueprint(f"kefu_{channel.name()}_webhook", __name__))

    @hook.route("/", methods=["GET"])
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @hook.route("/webhook", methods=["GET"])
    async def verify(request: Request) -> HTTPResponse:
        try:
            check_timestamp(request.args.get("timestamp"), channel.timestamp_window_s)
            echo = channel.verify_url(request.args)
        except BadInput as exc:
            return reject(channel.name(), exc)
        return response.text(echo)

    @hook.route("/webhook", methods=["POST"])
    async def receive(request: Request) -> HTTPResponse:
        try:
            content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type not in XML_TYPES:
                raise BadInput("Content-Type must be text/xml", status=415)
            params = require_params(request.args, "timestamp", "nonce")
            check_timestamp(params["timestamp"], channel.timestamp_window_s)
            msg, encrypted = channel.open_post(request.args, parse_xml(request.body or b""))
        except BadInput as exc:
            return reject(channel.name(), exc)
        try:
            text = await channel.answer(on_new_message, msg, request)
        except KefuError as exc:  # shared state down: let WeChat retry later
            log.error("%s: cannot process a message now: %s", channel.name(), exc)
            return response.text("temporarily unavailable", status=503)
        if text is None:
            return response.text("success")
        xml = channel.render_reply(msg, text)
        if encrypted and channel.envelope is not None:
            xml = channel.envelope.encrypt(xml, params["nonce"], params["timestamp"])
        return response.text(xml, content_type="application/xml")

    return hook
