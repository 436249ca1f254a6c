"""The ticket WebSocket: new messages and status changes pushed to the agent, the agent's replies received.

The handshake needs a session cookie and a same-host Origin (`websocket_guard`, against
cross-site WebSocket hijacking), since browsers send no CSRF header on WebSocket upgrades. The
session is checked again every few seconds: a socket ends once its session does (logout, account
disabled or replaced with `kefu agents`, expiry), from this console process or another.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import ticket_fields as tf
from handoff.console.ticket_api import check_assignee, message_json, ticket_json, visible_ticket
from handoff.console.users import Agent
from handoff.console.web import (
    SESSION_COOKIE,
    ApiError,
    add_routes,
    current_session,
    int_arg,
    same_origin,
    text_field,
)
from handoff.tickets import Ticket
from kefu.errors import KefuError, NotFound

log = logging.getLogger(__name__)

SESSION_CHECK = 5.0  # seconds between checks that the socket's session still exists


async def websocket_guard(request: Request) -> Optional[HTTPResponse]:
    """Refuse a WebSocket handshake without a session or from another origin (CSWSH)."""
    if request.path.startswith("/ws/"):
        if not same_origin(request) or await current_session(request) is None:
            return response.json({"detail": "not logged in or wrong origin"}, status=403)
    return None


async def ticket_socket(request: Request, ws: Any, ticket_id: str) -> None:
    ctx = request.app.ctx
    session = await current_session(request)
    agent = session.agent
    try:
        ticket = await visible_ticket(request.app, agent, ticket_id)
    except (ApiError, NotFound):
        await ws.send(json.dumps({"type": "error", "detail": "no such ticket in your queues"}))
        await ws.close(code=4404)
        return
    ctx.online[agent.name] = ctx.online.get(agent.name, 0) + 1
    wake = ctx.hub.subscribe(ticket.id)
    try:
        await _socket_loop(request.app, ws, agent, ticket, wake, int_arg(request.args.get("after"), 0),
                           request.cookies.get(SESSION_COOKIE))
    finally:
        ctx.hub.unsubscribe(ticket.id, wake)
        ctx.online[agent.name] -= 1
        if ctx.online[agent.name] <= 0:
            del ctx.online[agent.name]


async def _push(app: Sanic, ws: Any, ticket: Ticket, wake: asyncio.Event, after: int) -> None:
    """Send messages after `after`, and the ticket whenever its status, agent or queue changes."""
    last_id, last_state = after, None
    while True:
        wake.clear()
        for row in await app.ctx.tickets.messages(ticket.id, last_id):
            await ws.send(json.dumps({"type": "message", **message_json(row)}, ensure_ascii=False))
            last_id = row["id"]
        current = await app.ctx.tickets.get(ticket.id)
        state = (current.status, current.agent, current.queue)
        if state != last_state:
            await ws.send(json.dumps({"type": "ticket", "ticket": ticket_json(current)}, ensure_ascii=False))
            last_state = state
        try:
            await asyncio.wait_for(wake.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def _receive(app: Sanic, ws: Any, agent: Agent, ticket: Ticket) -> None:
    """Relay {"type": "send", "text": ...} from the assigned agent; errors go back as {"type": "error"}."""
    while True:
        raw = await ws.recv()
        if raw is None:
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("type") != "send":
                raise ApiError("expected {\"type\": \"send\", \"text\": ...}", 400)
            text = text_field(data, "text", tf.MAX_TEXT)
            current = await app.ctx.tickets.get(ticket.id)
            check_assignee(agent, current, supervisor_ok=False)
            await app.ctx.relay.agent_says(current, agent.name, text)
        except ApiError as exc:
            await ws.send(json.dumps({"type": "error", "detail": exc.detail}))
        except (ValueError, KefuError) as exc:
            await ws.send(json.dumps({"type": "error", "detail": str(exc)[:300] or exc.__class__.__name__}))


async def _watch_session(app: Sanic, ws: Any, token: Optional[str]) -> None:
    """Close the socket once its session is gone (a logged-out or disabled agent must stop receiving)."""
    while await app.ctx.agents.session(token) is not None:
        await asyncio.sleep(SESSION_CHECK)
    await ws.send(json.dumps({"type": "error", "detail": "logged out"}))
    await ws.close(code=4401, reason="logged out")


async def _socket_loop(app: Sanic, ws: Any, agent: Agent, ticket: Ticket, wake: asyncio.Event, after: int,
                       token: Optional[str]) -> None:
    """Push and receive until either side ends (the socket closes, sending fails, or the session ends)."""
    tasks = [asyncio.ensure_future(_push(app, ws, ticket, wake, after)),
             asyncio.ensure_future(_receive(app, ws, agent, ticket)),
             asyncio.ensure_future(_watch_session(app, ws, token))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() and not isinstance(task.exception(), asyncio.CancelledError):
                log.debug("ticket socket ended: %r", task.exception())
    finally:
        for task in tasks:
            task.cancel()


def register(app: Sanic) -> None:
    app.on_request(websocket_guard)
    add_routes(app, [("websocket", "/ws/tickets/<ticket_id>", ticket_socket)])
