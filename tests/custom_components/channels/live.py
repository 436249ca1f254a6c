"""Run a real Sanic app or aiohttp app on a free port in a background thread (own event loop)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, Callable, Optional

from aiohttp import web
from sanic import Sanic

from tests.servers import free_port


class LiveSanic:
    """A Sanic server for one test module: `url`, `run(coro)` on its loop, `stop()`."""

    def __init__(self, app: Sanic) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._server: Any = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> LiveSanic:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self._server = await self.app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()
        await self._server.before_start()
        await self._server.after_start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Idempotent: a test may stop a server (a "restart") before the fixture does."""
        if not self._thread.is_alive():
            return

        async def _stop() -> None:
            await self._server.before_stop()
            await self._server.close()
            await self._server.after_stop()

        try:
            self.run(_stop(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def sanic_app(name: str = "kefu_test") -> Sanic:
    """A fresh app; test mode (as sanic-testing sets it) lets several apps start in one process:
    Sanic's TouchUp otherwise rewrites class methods on the first start and fails on the next."""
    Sanic.test_mode = True
    return Sanic(f"{name}_{uuid.uuid4().hex[:8]}")


class LiveAiohttp:
    """An aiohttp web app (the fake platform APIs) on a free port in its own thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._runner: Optional[web.AppRunner] = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> LiveAiohttp:
        self._thread.start()

        async def _start() -> None:
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(_start(), self.loop).result(30)
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
