"""The agents' JSON API: who am I, the queues, a ticket, claim / transfer / reply / close, intent corrections.

Roles: an agent works the queues of their skill groups, a senior also the `senior` queue, a
supervisor every queue. Only the assigned agent writes to the customer; the assigned agent or a
supervisor transfers and closes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import ticket_fields as tf
from handoff.console.corrections import check_intent, record_correction
from handoff.console.pages import DISPOSITIONS
from handoff.console.users import Agent
from handoff.console.web import ApiError, Route, add_routes, body_json, require_session, text_field
from handoff.tickets import AlreadyClaimed, Ticket, routing_queues

SUMMARY_FIELDS = ("id", "conversation_id", "channel", "queue", "priority", "reason", "language", "status", "agent")


def iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value else None


def ticket_json(ticket: Ticket, full: bool = False) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    data: dict[str, Any] = {name: getattr(ticket, name) for name in SUMMARY_FIELDS}
    data["created_at"] = iso(ticket.created_at)
    data["waiting_seconds"] = round((now - ticket.created_at).total_seconds(), 1) if ticket.status == "waiting" else 0
    data["sentiment"] = ticket.sentiment_trend[-1] if ticket.sentiment_trend else None
    if full:
        data.update(
            claimed_at=iso(ticket.claimed_at), closed_at=iso(ticket.closed_at), disposition=ticket.disposition,
            rating=ticket.rating, reason_detail=ticket.reason_detail, intent_ranking=ticket.intent_ranking,
            sentiment_trend=ticket.sentiment_trend, transcript=ticket.transcript, suggestions=ticket.suggestions,
        )
    return data


def message_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "role": row["role"], "text": row["text"], "created_at": iso(row["created_at"])}


async def visible_ticket(app: Sanic, agent: Agent, ticket_id: str) -> Ticket:
    """The ticket if this agent may see it; 404 otherwise (do not reveal other queues' ids)."""
    ticket = await app.ctx.tickets.get(ticket_id)
    if not (agent.may_work(ticket.queue) or ticket.agent == agent.name):
        raise ApiError("no such ticket in your queues", 404)
    return ticket


def check_assignee(agent: Agent, ticket: Ticket, supervisor_ok: bool) -> None:
    if ticket.status == "closed":
        raise ApiError("the ticket is closed", 409)
    if ticket.agent == agent.name and ticket.status == "assigned":
        return
    if supervisor_ok and agent.is_supervisor:
        return
    raise ApiError("only the assigned agent may do this", 403)


async def me(request: Request) -> HTTPResponse:
    session = await require_session(request, csrf=False)
    return response.json({"agent": session.agent.public(), "csrf": session.csrf})


async def queues(request: Request) -> HTTPResponse:
    agent = (await require_session(request, csrf=False)).agent
    allowed = agent.queues()
    tickets = await request.app.ctx.tickets.list_open(allowed)
    grouped: dict[str, list[dict[str, Any]]] = {q: [] for q in (allowed or [])}
    for ticket in tickets:
        grouped.setdefault(ticket.queue, []).append(ticket_json(ticket))
    return response.json({"queues": grouped})


async def ticket_detail(request: Request, ticket_id: str) -> HTTPResponse:
    ctx = request.app.ctx
    agent = (await require_session(request, csrf=False)).agent
    ticket = await visible_ticket(request.app, agent, ticket_id)
    messages = await ctx.tickets.messages(ticket.id)
    history = await ctx.events.history(ticket.conversation_id)
    return response.json(
        {"ticket": ticket_json(ticket, full=True), "messages": [message_json(m) for m in messages],
         "history": history}
    )


async def claim(request: Request, ticket_id: str) -> HTTPResponse:
    agent = (await require_session(request, csrf=True)).agent
    ticket = await visible_ticket(request.app, agent, ticket_id)
    try:
        ticket = await request.app.ctx.tickets.claim(ticket.id, agent.name)
    except AlreadyClaimed as exc:
        raise ApiError(str(exc), 409) from exc
    await request.app.ctx.relay.claimed(ticket)
    return response.json({"ticket": ticket_json(ticket, full=True)})


async def transfer(request: Request, ticket_id: str) -> HTTPResponse:
    ctx = request.app.ctx
    agent = (await require_session(request, csrf=True)).agent
    data = body_json(request)
    queue = tf.queue_name(data.get("queue"))
    known = routing_queues()
    if queue not in known:  # no agent works it and routing counts no capacity there
        raise ApiError(f"no queue {queue!r} in routing: transfer to one of {', '.join(known)}", 400)
    ticket = await visible_ticket(request.app, agent, ticket_id)
    if not (ticket.status == "waiting" and agent.may_work(ticket.queue)):
        check_assignee(agent, ticket, supervisor_ok=True)
    ticket = await ctx.tickets.transfer(ticket.id, queue, agent.name)
    ctx.hub.notify(ticket.id)
    ctx.hub.notify("queues")
    return response.json({"ticket": ticket_json(ticket, full=True)})


async def send(request: Request, ticket_id: str) -> HTTPResponse:
    agent = (await require_session(request, csrf=True)).agent
    text = text_field(body_json(request), "text", tf.MAX_TEXT)
    ticket = await visible_ticket(request.app, agent, ticket_id)
    check_assignee(agent, ticket, supervisor_ok=False)
    message_id = await request.app.ctx.relay.agent_says(ticket, agent.name, text)
    return response.json({"id": message_id}, status=201)


async def close(request: Request, ticket_id: str) -> HTTPResponse:
    agent = (await require_session(request, csrf=True)).agent
    disposition = body_json(request).get("disposition")
    if disposition not in DISPOSITIONS:
        raise ApiError(f"disposition must be one of {', '.join(DISPOSITIONS)}", 400)
    ticket = await visible_ticket(request.app, agent, ticket_id)
    check_assignee(agent, ticket, supervisor_ok=True)
    closed = await request.app.ctx.relay.close(ticket, ticket.agent or agent.name, disposition)
    return response.json({"ticket": ticket_json(closed, full=True)})


async def correction(request: Request, ticket_id: str) -> HTTPResponse:
    """The agent's correct intent for the customer's message (`kefu iterate` proposes it as an example)."""
    agent = (await require_session(request, csrf=True)).agent
    intent = check_intent(body_json(request).get("intent"))
    ticket = await visible_ticket(request.app, agent, ticket_id)
    if ticket.agent != agent.name and not agent.is_supervisor:
        raise ApiError("only the ticket's agent or a supervisor may correct it", 403)
    detail = await record_correction(request.app.ctx.pool, ticket.id, intent, agent.name)
    return response.json({"ticket_id": ticket.id, "reason_detail": detail})


ROUTES: tuple[Route, ...] = (
    ("get", "/api/me", me),
    ("get", "/api/queues", queues),
    ("get", "/api/tickets/<ticket_id>", ticket_detail),
    ("post", "/api/tickets/<ticket_id>/claim", claim),
    ("post", "/api/tickets/<ticket_id>/transfer", transfer),
    ("post", "/api/tickets/<ticket_id>/messages", send),
    ("post", "/api/tickets/<ticket_id>/close", close),
    ("post", "/api/tickets/<ticket_id>/correction", correction),
)


def register(app: Sanic) -> None:
    add_routes(app, ROUTES)
