"""A local stand-in for the Slack Web API method the channel calls (`chat.postMessage`,
form or JSON body, bearer token), recording what was posted."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web


class FakeSlack:
    def __init__(self, token: str) -> None:
        self.token = token
        self.posted: list[dict[str, Any]] = []
        self._ts = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self.post_message)
        return app

    async def post_message(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        if not body.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        self.posted.append(body)
        return web.json_response({"ok": True, "channel": body["channel"], "ts": f"1700000000.{next(self._ts):06d}"})
