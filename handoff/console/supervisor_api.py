"""Supervisors' JSON API: today's figures and queues, the report's live figures, the routing thresholds."""

from __future__ import annotations

import logging

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.console.live import live_payload, queue_state
from handoff.console.web import ApiError, Route, add_routes, require_session, require_supervisor
from kefu.errors import ConfigError
from kefu.thresholds import NoPlan

log = logging.getLogger(__name__)


async def metrics(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    require_supervisor((await require_session(request, csrf=False)).agent)
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*), avg(rating)::float8 FROM handoff_tickets "
            "WHERE status = 'closed' AND closed_at >= date_trunc('day', now())"
        )
        closed_today, avg_rating = await cur.fetchone()
    return response.json(
        {"queues": await queue_state(ctx.pool), "closed_today": closed_today,
         "avg_rating_today": round(avg_rating, 2) if avg_rating is not None else None,
         "agents_online": sorted(ctx.online)}
    )


async def live_metrics(request: Request) -> HTTPResponse:
    """The report's metrics over `?window=` (default 24h, `today`, up to 7d), cached a few seconds."""
    require_supervisor((await require_session(request, csrf=False)).agent)
    windows = request.get_args(keep_blank_values=True).getlist("window") or []
    if len(windows) > 1:
        raise ApiError("give window at most once", 400)
    return response.json(await live_payload(request.app, windows[0] if windows else None))


async def thresholds(request: Request) -> HTTPResponse:
    """The routing thresholds (and calibration, out-of-scope threshold) stored with the served model."""
    require_supervisor((await require_session(request, csrf=False)).agent)
    try:
        return response.json(await request.app.ctx.plan_cache.get())
    except NoPlan as exc:
        raise ApiError(str(exc), 404) from exc
    except ConfigError as exc:
        log.warning("console: %s", exc)
        raise ApiError(str(exc), 500) from exc


ROUTES: tuple[Route, ...] = (
    ("get", "/api/metrics", metrics),
    ("get", "/api/metrics/live", live_metrics),
    ("get", "/api/thresholds", thresholds),
)


def register(app: Sanic) -> None:
    add_routes(app, ROUTES)
