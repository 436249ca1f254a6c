"""The action server's stores, each opened on first use: one object, swappable in tests.

Every action reaches the knowledge service, product graph, rule book, order book and handoff
ticket store through `services()`. Nothing is opened at import time. Tests install their own
`Services` (with the members they care about set) for the duration of a test:

    with use_services(Services(graph=GraphQA(open_graph(url)))) as current:
        ...

The ticket store's connection pool belongs to the event loop that opened it (the action server
runs one loop; tests run a loop per test), so another loop gets a pool of its own.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from handoff.tickets import TicketStore
from kefu.config import PROJECT_ROOT, Settings, load_settings
from kefu.dburl import DatabaseURL, tracker_database_url
from kefu.errors import StoreUnavailable
from knowledge.graph import graph_url_for, open_graph
from knowledge.graph.qa import GraphQA
from knowledge.orders import OrderBook
from knowledge.rules import RuleBook
from knowledge.service import KnowledgeService

RULES_DIR = PROJECT_ROOT / "data" / "knowledge" / "rules"


@dataclass(eq=False)
class Services:
    """The stores of one action-server process. A member left None is built on first use.

    `settings` None means "read them when needed": the ticket store reads them on every call, so a
    changed KEFU_POSTGRES_URL (tests) is picked up; the other members read them once.
    """

    settings: Optional[Settings] = None
    knowledge: Optional[KnowledgeService] = None
    graph: Optional[GraphQA] = None
    rules: Optional[RuleBook] = None
    orders: Optional[OrderBook] = None
    tickets: Optional[TicketStore] = None
    rules_dir: Path = RULES_DIR
    _tickets_url: Optional[DatabaseURL] = field(default=None, repr=False)
    _loop: Optional[asyncio.AbstractEventLoop] = field(default=None, repr=False)
    _tickets_lock: Optional[asyncio.Lock] = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # look-ups run in threads

    def _settings(self) -> Settings:
        return self.settings if self.settings is not None else load_settings()

    def knowledge_service(self) -> KnowledgeService:
        """FAQ and case stores behind one service (the stores themselves open on the first question)."""
        with self._lock:
            if self.knowledge is None:
                self.knowledge = KnowledgeService(settings=self._settings())
            return self.knowledge

    def graph_qa(self) -> GraphQA:
        """Graph answers on KEFU_GRAPH_URL, or the local FalkorDB `kefu run` starts."""
        with self._lock:
            if self.graph is None:
                self.graph = GraphQA(open_graph(graph_url_for(self._settings())))
            return self.graph

    def rule_book(self) -> RuleBook:
        """The business rules of `rules_dir` (data/knowledge/rules); the book notices edited files by itself."""
        with self._lock:
            if self.rules is None:
                self.rules = RuleBook.from_dir(self.rules_dir)
            return self.rules

    def order_book(self) -> OrderBook:
        """The order system (knowledge.orders), loaded on first use."""
        with self._lock:
            if self.orders is None:
                self.orders = OrderBook()
            return self.orders

    async def ticket_store(self) -> TicketStore:
        """Handoff tickets on the tracker-store database, opened and migrated once per event loop."""
        url = tracker_database_url(self._settings())
        if url is None:
            raise StoreUnavailable("no PostgreSQL configured for handoff tickets (KEFU_POSTGRES_URL)")
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._tickets_lock is None:
            # a pool of another loop cannot be used (nor closed) from this one
            self.tickets, self._tickets_url, self._loop, self._tickets_lock = None, None, loop, asyncio.Lock()
        async with self._tickets_lock:
            if self.tickets is None or self._tickets_url != url:
                store = TicketStore(str(url), max_size=4, timeout=5.0)
                await store.open()
                await store.migrate()
                self.tickets, self._tickets_url = store, url
            return self.tickets

    async def aclose(self) -> None:
        """Close the ticket pool, from the loop that opened it (a test's loop ends with the test)."""
        if self.tickets is not None:
            await self.tickets.close()
            self.tickets, self._tickets_url = None, None


_current = Services()


def services() -> Services:
    """The services the actions use now (the process-wide ones, or a test's)."""
    return _current


@contextmanager
def use_services(replacement: Services) -> Iterator[Services]:
    """Let the actions use `replacement` inside the block (tests); the previous ones come back after."""
    global _current
    previous, _current = _current, replacement
    try:
        yield replacement
    finally:
        _current = previous


async def ticket_store() -> TicketStore:
    """The current services' ticket store (the name actions/handoff.py and actions/routing.py use)."""
    return await services().ticket_store()
