"""actions.services: one lazily built, swappable set of stores for the action server."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.services import RULES_DIR, Services, ticket_store, use_services
from actions.services import services as current_services
from kefu.config import load_settings
from kefu.dburl import DatabaseURL
from kefu.errors import StoreUnavailable
from knowledge.orders import OrderBook


def settings_for(url: str | None, **extra: str):
    env = {"KEFU_POSTGRES_URL": url or "", **extra}
    return load_settings(env, env_file=Path("/nonexistent/.env"))


def test_building_services_opens_nothing():
    built = Services()
    assert (built.knowledge, built.graph, built.rules, built.orders, built.tickets) == (None,) * 5
    assert built.rules_dir == RULES_DIR


def test_use_services_swaps_and_restores(services: Services):  # the autouse fixture installed `services`
    mine = Services(orders=OrderBook(Path("/nonexistent/orders.yml")))
    with use_services(mine) as current:
        assert current is mine and current_services() is mine
        assert current_services().order_book() is mine.orders
    assert current_services() is services


def test_members_are_built_once(services: Services):
    assert services.rule_book() is services.rule_book()
    assert services.order_book() is services.order_book()


async def test_no_database_configured_is_a_store_error():
    with use_services(Services(settings=settings_for(None))):
        with pytest.raises(StoreUnavailable, match="KEFU_POSTGRES_URL"):
            await ticket_store()


async def test_ticket_store_opens_once_per_loop_on_the_tracker_database(handoff_db: str):
    server = str(DatabaseURL(handoff_db).replace(database=""))  # a server URL naming no database
    database = DatabaseURL(handoff_db).database
    mine = Services(settings=settings_for(server, KEFU_DATABASE=database))
    try:
        first = await mine.ticket_store()
        assert await mine.ticket_store() is first
        assert DatabaseURL(first.url).database == database
    finally:
        await mine.aclose()
    assert mine.tickets is None
