"""The console's resources: opened in `before_server_start` (in the serving process), closed after stop.

One PostgreSQL pool for accounts, adapter links and tracker events, the ticket store, Rasa's HTTP
API, the live-chat adapter, and the relay task that moves messages between them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sanic import Sanic

from handoff.adapters import LiveChatAdapter, adapter_class
from handoff.adapters.base import AdapterLinks
from handoff.console.live import LiveCache
from handoff.console.plan import PlanCache
from handoff.console.users import AgentStore
from handoff.rasa_api import RasaClient
from handoff.relay import Hub, Relay
from handoff.tickets import TicketStore
from handoff.tracker_events import TrackerEvents

log = logging.getLogger(__name__)


async def _open_stores(app: Sanic) -> AsyncConnectionPool:
    config = app.ctx.config
    pool = AsyncConnectionPool(config.postgres_url, min_size=1, max_size=6, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=15)
    app.ctx.pool = pool
    app.ctx.tickets = TicketStore(config.postgres_url, max_size=6)
    await app.ctx.tickets.open()
    await app.ctx.tickets.migrate()
    app.ctx.agents = AgentStore(pool)
    await app.ctx.agents.migrate()
    app.ctx.links = AdapterLinks(pool)
    await app.ctx.links.migrate()
    return pool


async def open_resources(app: Sanic, _loop: Any) -> None:
    config = app.ctx.config
    pool = await _open_stores(app)
    app.ctx.rasa = RasaClient(config.rasa_url, config.rasa_token)
    await app.ctx.rasa.open()
    adapter: LiveChatAdapter = adapter_class(config.adapter)(links=app.ctx.links, **config.adapter_options)
    await adapter.start()
    app.ctx.adapter = adapter
    app.ctx.hub = Hub()
    app.ctx.online = {}
    app.ctx.live_cache = LiveCache()
    app.ctx.plan_cache = PlanCache(config.model_path)
    app.ctx.events = TrackerEvents(pool)
    app.ctx.relay = Relay(app.ctx.tickets, app.ctx.events, app.ctx.rasa, adapter, app.ctx.hub,
                          interval=config.relay_interval, rating_action=config.rating_action)
    await app.ctx.relay.migrate()
    app.ctx.stopping = asyncio.Event()
    app.ctx.relay_task = asyncio.ensure_future(app.ctx.relay.run(app.ctx.stopping))
    log.info("console ready: adapter=%s rasa=%s", config.adapter, config.rasa_url)


async def close_resources(app: Sanic, _loop: Any) -> None:
    app.ctx.stopping.set()
    await app.ctx.relay_task
    await app.ctx.adapter.stop()
    await app.ctx.rasa.close()
    await app.ctx.tickets.close()
    await app.ctx.pool.close()


def install(app: Sanic) -> None:
    app.before_server_start(open_resources)
    app.after_server_stop(close_resources)
