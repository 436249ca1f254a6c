"""Local HTTP servers implementing the documented subset of the Chatwoot Application API and the
Slack Web API that the adapters use, for the contract tests (the real services cannot run here).

Chatwoot (https://developers.chatwoot.com/api-reference): header `api_access_token`;
`POST /api/v1/accounts/{a}/contacts`, `.../conversations`, `.../conversations/{id}/messages`,
`.../conversations/{id}/assignments`, `.../conversations/{id}/toggle_status`.
Slack (https://api.slack.com/methods/chat.postMessage): `Authorization: Bearer xoxb-...`;
`POST /api/chat.postMessage` answers HTTP 200 with `{"ok": false, "error": ...}` on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from aiohttp import web

from tests.servers import free_port


@dataclass
class ChatwootServer:
    token: str
    account_id: int = 7
    inbox_id: int = 3
    port: int = field(default_factory=free_port)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False  # answer 500 to everything, like a Chatwoot being redeployed
    _ids: Any = field(default_factory=lambda: itertools.count(100))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        prefix = f"/api/v1/accounts/{self.account_id}"

        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            if self.down:
                return web.json_response({"error": "Internal Server Error"}, status=500)
            if request.headers.get("api_access_token") != self.token:
                return web.json_response({"error": "Invalid Access Token"}, status=401)
            body = await request.json()
            self.requests.append((request.path, body))
            request["body"] = body
            return await handler(request)

        async def contacts(request: web.Request) -> web.Response:
            body = request["body"]
            if body.get("inbox_id") != self.inbox_id:
                return web.json_response({"message": "Inbox not found"}, status=422)
            cid = next(self._ids)
            self.contacts[cid] = body
            return web.json_response({"payload": {"contact": {"id": cid, "name": body.get("name")},
                                                  "contact_inbox": {"source_id": str(uuid.uuid4())}}})

        async def conversations(request: web.Request) -> web.Response:
            body = request["body"]
            if body.get("contact_id") not in self.contacts or not body.get("source_id"):
                return web.json_response({"message": "contact_id and source_id are required"}, status=422)
            conv = next(self._ids)
            self.conversations[conv] = {"status": body.get("status", "open"), "team_id": None, "messages": [],
                                        "custom_attributes": body.get("custom_attributes", {})}
            return web.json_response({"id": conv, "inbox_id": self.inbox_id, "status": body.get("status")})

        def conversation(request: web.Request) -> dict[str, Any]:
            conv = self.conversations.get(int(request.match_info["cid"]))
            if conv is None:
                raise web.HTTPNotFound(text='{"error": "Resource could not be found"}', content_type="application/json")
            return conv

        async def messages(request: web.Request) -> web.Response:
            conv, body = conversation(request), request["body"]
            if not body.get("content") or body.get("message_type") not in ("incoming", "outgoing"):
                return web.json_response({"message": "content and message_type are required"}, status=422)
            conv["messages"].append(body)
            return web.json_response({"id": next(self._ids), **body})

        async def assignments(request: web.Request) -> web.Response:
            conversation(request)["team_id"] = request["body"]["team_id"]
            return web.json_response({"id": request["body"]["team_id"], "name": "team"})

        async def toggle_status(request: web.Request) -> web.Response:
            status = request["body"].get("status")
            if status not in ("open", "resolved", "pending", "snoozed"):
                return web.json_response({"message": "invalid status"}, status=422)
            conversation(request)["status"] = status
            return web.json_response({"meta": {}, "payload": {"success": True, "current_status": status,
                                                              "conversation_id": int(request.match_info["cid"])}})

        app = web.Application(middlewares=[auth])
        app.router.add_post(f"{prefix}/contacts", contacts)
        app.router.add_post(f"{prefix}/conversations", conversations)
        app.router.add_post(prefix + "/conversations/{cid}/messages", messages)
        app.router.add_post(prefix + "/conversations/{cid}/assignments", assignments)
        app.router.add_post(prefix + "/conversations/{cid}/toggle_status", toggle_status)
        return app


@dataclass
class SlackServer:
    token: str
    channel: str = "C0AGENTS"
    port: int = field(default_factory=free_port)
    posts: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False  # answer HTTP 500, like Slack during an incident
    _ts: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def app(self) -> web.Application:
        async def post_message(request: web.Request) -> web.Response:
            if self.down:
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return web.json_response({"ok": False, "error": "invalid_auth"})
            body = await request.json()
            if body.get("channel") != self.channel:
                return web.json_response({"ok": False, "error": "channel_not_found"})
            if not body.get("text"):
                return web.json_response({"ok": False, "error": "no_text"})
            ts = f"1700000000.{next(self._ts):06d}"
            self.posts.append({**body, "ts": ts})
            return web.json_response({"ok": True, "channel": self.channel, "ts": ts,
                                      "message": {"text": body["text"], "ts": ts}})

        app = web.Application()
        app.router.add_post("/api/chat.postMessage", post_message)
        return app

    def thread(self, ts: str) -> list[str]:
        return [p["text"] for p in self.posts if p.get("thread_ts") == ts]


@contextlib.contextmanager
def serve_in_thread(app: web.Application, port: int) -> Iterator[None]:
    """Run an aiohttp app on its own loop in a thread, so blocking test code and other loops can call it."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "local server did not start"
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
