"""The console's JSON API, the ticket WebSocket, adapter webhooks and the REST customers' polling path.

Roles: an agent works the queues of their skill groups, a senior also the `senior` queue, a
supervisor every queue. Only the assigned agent writes to the customer; the assigned agent or a
supervisor transfers and closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import ticket_fields as tf
from handoff.adapters.base import WebhookRequest
from handoff.console.app import ApiError, current_session, require_session, same_origin
from handoff.console.corrections import check_intent, record_correction
from handoff.console.live import live_payload, queue_state
from handoff.console.pages import DISPOSITIONS
from handoff.console.users import Agent
from handoff.tickets import AlreadyClaimed, Ticket
from kefu.errors import BadInput, ConfigError, KefuError, NotFound
from ops.thresholds_cli import NoPlan

log = logging.getLogger(__name__)

SUMMARY_FIELDS = ("id", "conversation_id", "channel", "queue", "priority", "reason", "language", "status", "agent")


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value else None


def ticket_json(ticket: Ticket, full: bool = False) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    data: dict[str, Any] = {name: getattr(ticket, name) for name in SUMMARY_FIELDS}
    data["created_at"] = _iso(ticket.created_at)
    data["waiting_seconds"] = round((now - ticket.created_at).total_seconds(), 1) if ticket.status == "waiting" else 0
    data["sentiment"] = ticket.sentiment_trend[-1] if ticket.sentiment_trend else None
    if full:
        data.update(
            claimed_at=_iso(ticket.claimed_at), closed_at=_iso(ticket.closed_at), disposition=ticket.disposition,
            rating=ticket.rating, reason_detail=ticket.reason_detail, intent_ranking=ticket.intent_ranking,
            sentiment_trend=ticket.sentiment_trend, transcript=ticket.transcript, suggestions=ticket.suggestions,
        )
    return data


def message_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "role": row["role"], "text": row["text"], "created_at": _iso(row["created_at"])}


def body_json(request: Request) -> dict[str, Any]:
    """The JSON object body of an API call (400 for anything else; size is capped by Sanic)."""
    if (request.content_type or "").split(";")[0].strip() != "application/json":
        raise ApiError("the body must be application/json", 415)
    try:
        data = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"the body is not valid JSON: {exc.__class__.__name__}", 400) from exc
    if not isinstance(data, dict):
        raise ApiError("the body must be a JSON object", 400)
    return data


def text_field(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(f"{key} must be a non-empty string", 400)
    if len(value) > limit:
        raise ApiError(f"{key} is longer than {limit} characters", 400)
    return value


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


def register(app: Sanic) -> None:  # noqa: C901 - one place that lists every route
    @app.on_request
    async def websocket_guard(request: Request) -> Optional[HTTPResponse]:
        """Refuse a WebSocket handshake without a session or from another origin (CSWSH)."""
        if request.path.startswith("/ws/"):
            if not same_origin(request) or await current_session(request) is None:
                return response.json({"detail": "not logged in or wrong origin"}, status=403)
        return None

    @app.get("/api/me")
    async def me(request: Request) -> HTTPResponse:
        session = await require_session(request, csrf=False)
        return response.json({"agent": session.agent.public(), "csrf": session.csrf})

    @app.get("/api/queues")
    async def queues(request: Request) -> HTTPResponse:
        agent = (await require_session(request, csrf=False)).agent
        allowed = agent.queues()
        tickets = await app.ctx.tickets.list_open(allowed)
        grouped: dict[str, list[dict[str, Any]]] = {q: [] for q in (allowed or [])}
        for ticket in tickets:
            grouped.setdefault(ticket.queue, []).append(ticket_json(ticket))
        return response.json({"queues": grouped})

    @app.get("/api/tickets/<ticket_id>")
    async def ticket_detail(request: Request, ticket_id: str) -> HTTPResponse:
        agent = (await require_session(request, csrf=False)).agent
        ticket = await visible_ticket(app, agent, ticket_id)
        messages = await app.ctx.tickets.messages(ticket.id)
        history = await app.ctx.events.history(ticket.conversation_id)
        return response.json(
            {"ticket": ticket_json(ticket, full=True), "messages": [message_json(m) for m in messages],
             "history": history}
        )

    @app.post("/api/tickets/<ticket_id>/claim")
    async def claim(request: Request, ticket_id: str) -> HTTPResponse:
        agent = (await require_session(request, csrf=True)).agent
        ticket = await visible_ticket(app, agent, ticket_id)
        try:
            ticket = await app.ctx.tickets.claim(ticket.id, agent.name)
        except AlreadyClaimed as exc:
            raise ApiError(str(exc), 409) from exc
        await app.ctx.relay.claimed(ticket)
        return response.json({"ticket": ticket_json(ticket, full=True)})

    @app.post("/api/tickets/<ticket_id>/transfer")
    async def transfer(request: Request, ticket_id: str) -> HTTPResponse:
        agent = (await require_session(request, csrf=True)).agent
        data = body_json(request)
        queue = tf.queue_name(data.get("queue"))
        ticket = await visible_ticket(app, agent, ticket_id)
        if not (ticket.status == "waiting" and agent.may_work(ticket.queue)):
            check_assignee(agent, ticket, supervisor_ok=True)
        ticket = await app.ctx.tickets.transfer(ticket.id, queue, agent.name)
        app.ctx.hub.notify(ticket.id)
        app.ctx.hub.notify("queues")
        return response.json({"ticket": ticket_json(ticket, full=True)})

    @app.post("/api/tickets/<ticket_id>/messages")
    async def send(request: Request, ticket_id: str) -> HTTPResponse:
        agent = (await require_session(request, csrf=True)).agent
        text = text_field(body_json(request), "text", tf.MAX_TEXT)
        ticket = await visible_ticket(app, agent, ticket_id)
        check_assignee(agent, ticket, supervisor_ok=False)
        message_id = await app.ctx.relay.agent_says(ticket, agent.name, text)
        return response.json({"id": message_id}, status=201)

    @app.post("/api/tickets/<ticket_id>/close")
    async def close(request: Request, ticket_id: str) -> HTTPResponse:
        agent = (await require_session(request, csrf=True)).agent
        disposition = body_json(request).get("disposition")
        if disposition not in DISPOSITIONS:
            raise ApiError(f"disposition must be one of {', '.join(DISPOSITIONS)}", 400)
        ticket = await visible_ticket(app, agent, ticket_id)
        check_assignee(agent, ticket, supervisor_ok=True)
        closed = await app.ctx.relay.close(ticket, ticket.agent or agent.name, disposition)
        return response.json({"ticket": ticket_json(closed, full=True)})

    @app.get("/api/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        require_supervisor((await require_session(request, csrf=False)).agent)
        async with app.ctx.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*), avg(rating)::float8 FROM handoff_tickets "
                "WHERE status = 'closed' AND closed_at >= date_trunc('day', now())"
            )
            closed_today, avg_rating = await cur.fetchone()
        return response.json(
            {"queues": await queue_state(app.ctx.pool), "closed_today": closed_today,
             "avg_rating_today": round(avg_rating, 2) if avg_rating is not None else None,
             "agents_online": sorted(app.ctx.online)}
        )

    @app.get("/api/metrics/live")
    async def live_metrics(request: Request) -> HTTPResponse:
        """The report's metrics over `?window=` (default 24h, `today`, up to 7d), cached a few seconds."""
        require_supervisor((await require_session(request, csrf=False)).agent)
        windows = request.get_args(keep_blank_values=True).getlist("window") or []
        if len(windows) > 1:
            raise ApiError("give window at most once", 400)
        return response.json(await live_payload(app, windows[0] if windows else None))

    @app.get("/api/thresholds")
    async def thresholds(request: Request) -> HTTPResponse:
        """The routing thresholds (and calibration, out-of-scope threshold) stored with the served model."""
        require_supervisor((await require_session(request, csrf=False)).agent)
        try:
            return response.json(await app.ctx.plan_cache.get())
        except NoPlan as exc:
            raise ApiError(str(exc), 404) from exc
        except ConfigError as exc:
            log.warning("console: %s", exc)
            raise ApiError(str(exc), 500) from exc

    @app.post("/api/tickets/<ticket_id>/correction")
    async def correction(request: Request, ticket_id: str) -> HTTPResponse:
        """The agent's correct intent for the customer's message (`kefu iterate` proposes it as an example)."""
        agent = (await require_session(request, csrf=True)).agent
        intent = check_intent(body_json(request).get("intent"))
        ticket = await visible_ticket(app, agent, ticket_id)
        if ticket.agent != agent.name and not agent.is_supervisor:
            raise ApiError("only the ticket's agent or a supervisor may correct it", 403)
        detail = await record_correction(app.ctx.pool, ticket.id, intent, agent.name)
        return response.json({"ticket_id": ticket.id, "reason_detail": detail})

    @app.websocket("/ws/tickets/<ticket_id>")
    async def ticket_socket(request: Request, ws: Any, ticket_id: str) -> None:
        session = await current_session(request)
        agent = session.agent
        try:
            ticket = await visible_ticket(app, agent, ticket_id)
        except (ApiError, NotFound):
            await ws.send(json.dumps({"type": "error", "detail": "no such ticket in your queues"}))
            await ws.close(code=4404)
            return
        app.ctx.online[agent.name] = app.ctx.online.get(agent.name, 0) + 1
        wake = app.ctx.hub.subscribe(ticket.id)
        try:
            await _socket_loop(app, ws, agent, ticket, wake, int_arg(request.args.get("after"), 0))
        finally:
            app.ctx.hub.unsubscribe(ticket.id, wake)
            app.ctx.online[agent.name] -= 1
            if app.ctx.online[agent.name] <= 0:
                del app.ctx.online[agent.name]

    @app.get("/handoff/messages")
    async def customer_poll(request: Request) -> HTTPResponse:
        """Agent replies (and the closing rating question) for customers on channels without an
        output channel (plain REST), from the conversation's latest ticket; poll with `after`."""
        conversation_id = tf.identifier("conversation_id", request.args.get("conversation_id"))
        after = int_arg(request.args.get("after"), 0)
        async with app.ctx.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM handoff_tickets WHERE conversation_id = %s ORDER BY created_at DESC LIMIT 1",
                (conversation_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return response.json({"status": None, "messages": []})
        ticket = await app.ctx.tickets.get(row[0])
        rows = await app.ctx.tickets.messages(ticket.id, after)
        replies = [{"id": r["id"], "role": r["role"], "text": r["text"], "created_at": _iso(r["created_at"])}
                   for r in rows if r["role"] in ("agent", "bot")]
        return response.json({"status": ticket.status, "messages": replies})

    @app.post("/handoff/webhooks/<adapter_name>")
    async def webhook(request: Request, adapter_name: str) -> HTTPResponse:
        adapter = app.ctx.adapter
        if adapter_name != adapter.name or adapter.name == "console":
            raise ApiError("no such webhook", 404)
        hook = WebhookRequest(request.body or b"", dict(request.headers), {k: v for k, v in request.query_args})
        messages = await adapter.receive_agent_message(hook)
        reply = adapter.immediate_reply(hook)
        for message in messages:
            try:
                await app.ctx.relay.from_adapter(message)
            except (AlreadyClaimed, NotFound, BadInput) as exc:
                log.info("webhook %s: ignored a message for ticket %s: %s", adapter.name, message.ticket_id, exc)
        return response.json(reply if reply is not None else {"ok": True})


def require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise ApiError("supervisors only", 403)


def int_arg(raw: Optional[str], default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadInput("after must be a non-negative integer") from exc
    if not 0 <= value < 2**62:
        raise BadInput("after must be a non-negative integer")
    return value


async def _socket_loop(app: Sanic, ws: Any, agent: Agent, ticket: Ticket, wake: asyncio.Event, after: int) -> None:
    """Push new messages and status changes; accept {"type": "send", "text": ...} from the agent."""

    async def push() -> None:
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

    async def receive() -> None:
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

    tasks = [asyncio.ensure_future(push()), asyncio.ensure_future(receive())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() and not isinstance(task.exception(), asyncio.CancelledError):
                log.debug("ticket socket ended: %r", task.exception())
    finally:
        for task in tasks:
            task.cancel()
