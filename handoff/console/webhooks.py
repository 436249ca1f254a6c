"""The console's `/handoff/` paths: live-chat adapters' webhooks, and REST customers polling for replies."""

from __future__ import annotations

import logging

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import ticket_fields as tf
from handoff.adapters.base import WebhookRequest
from handoff.console.ticket_api import message_json
from handoff.console.web import ApiError, Route, add_routes, int_arg
from handoff.tickets import AlreadyClaimed
from kefu.errors import BadInput, NotFound

log = logging.getLogger(__name__)


async def customer_poll(request: Request) -> HTTPResponse:
    """Agent replies (and the closing rating question) for customers on channels without an
    output channel (plain REST), from the conversation's latest ticket; poll with `after`."""
    ctx = request.app.ctx
    conversation_id = tf.identifier("conversation_id", request.args.get("conversation_id"))
    after = int_arg(request.args.get("after"), 0)
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM handoff_tickets WHERE conversation_id = %s ORDER BY created_at DESC LIMIT 1",
            (conversation_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return response.json({"status": None, "messages": []})
    ticket = await ctx.tickets.get(row[0])
    rows = await ctx.tickets.messages(ticket.id, after)
    replies = [message_json(r) for r in rows if r["role"] in ("agent", "bot")]
    return response.json({"status": ticket.status, "messages": replies})


async def webhook(request: Request, adapter_name: str) -> HTTPResponse:
    adapter = request.app.ctx.adapter
    if adapter_name != adapter.name or adapter.name == "console":
        raise ApiError("no such webhook", 404)
    hook = WebhookRequest(request.body or b"", dict(request.headers), {k: v for k, v in request.query_args})
    messages = await adapter.receive_agent_message(hook)
    reply = adapter.immediate_reply(hook)
    for message in messages:
        try:
            await request.app.ctx.relay.from_adapter(message)
        except (AlreadyClaimed, NotFound, BadInput) as exc:
            log.info("webhook %s: ignored a message for ticket %s: %s", adapter.name, message.ticket_id, exc)
    return response.json(reply if reply is not None else {"ok": True})


ROUTES: tuple[Route, ...] = (
    ("get", "/handoff/messages", customer_poll),
    ("post", "/handoff/webhooks/<adapter_name>", webhook),
)


def register(app: Sanic) -> None:
    add_routes(app, ROUTES)
