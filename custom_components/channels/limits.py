"""The Rasa server's request-size cap, installed by every Kefu channel's blueprint.

Sanic reads a whole request body (up to its default `REQUEST_MAX_SIZE` of 100 MB, chunked or
not) into memory before any handler runs, so a size check in a handler comes too late. Rasa
creates the Sanic app itself; a blueprint's `before_server_start` listener is the hook we get:
it lowers `REQUEST_MAX_SIZE` to `KEFU_MAX_REQUEST_BYTES` for the whole server (channels and
Rasa's HTTP API), so Sanic answers 413 from the Content-Length or, for a chunked body, as soon
as the chunks add up to more, without buffering the rest.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Sanic, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from kefu.config import load_settings


async def too_large(request: Request, exc: PayloadTooLarge) -> HTTPResponse:
    """413 as JSON with a reason, like the channels' other 4xx answers. Sanic raises the same error for
    a request line + headers over its header limit (a long query string): say so, not "body"."""
    if "header" in str(exc):
        return response.json({"status": 413, "reason": "request line and headers exceed the size limit"},
                             status=413)
    limit = request.app.config.REQUEST_MAX_SIZE
    return response.json({"status": 413, "reason": f"request body larger than {limit} bytes"}, status=413)


def cap_request_size(blueprint: Blueprint) -> Blueprint:
    """Make the server that registers `blueprint` refuse bodies over KEFU_MAX_REQUEST_BYTES."""

    @blueprint.listener("before_server_start")
    async def cap(app: Sanic, _loop: Any) -> None:
        limit = load_settings().max_request_bytes
        if app.config.REQUEST_MAX_SIZE > limit:
            app.config.REQUEST_MAX_SIZE = limit
        app.error_handler.add(PayloadTooLarge, too_large)

    return blueprint
