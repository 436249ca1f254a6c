"""A local implementation of the documented WeChat / WeCom server endpoints our connectors call,
for contract tests (no platform is reachable from here).

Paths, parameters and response fields follow the public docs: Official Account
`GET /cgi-bin/token` and `POST /cgi-bin/message/custom/send`; WeCom `GET /cgi-bin/gettoken`,
`POST /cgi-bin/message/send`; WeChat Customer Service `POST /cgi-bin/kf/sync_msg`,
`/cgi-bin/kf/send_msg`, `/cgi-bin/kf/service_state/get`, `/cgi-bin/kf/service_state/trans`.
Errors use the platform's codes: 40001 bad secret, 42001 expired token, 40014 invalid
token, 44004 empty content, 45002 content too long, 95007 bad sync token, 95016 bad state
transition. Token issuance is slowed by `token_delay_s` so concurrent refreshes overlap.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from aiohttp import web

MAX_CONTENT_BYTES = 2048
ALLOWED_TRANS = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {4}, 4: {1, 2, 3}}


class FakeWeChat:
    def __init__(self, apps: dict[str, set[str]], token_delay_s: float = 0.2, page_size: int = 2) -> None:
        self.apps = apps  # app id / corp id → accepted secrets (a corp has one per app and kf)
        self.token_delay_s = token_delay_s
        self.page_size = page_size
        self.valid_tokens: set[str] = set()
        self.token_calls = 0
        self.sent: list[dict[str, Any]] = []  # every accepted send, with "path"
        self.kf_messages: list[dict[str, Any]] = []  # the account's message log, cursor = index
        self.kf_sync_tokens: set[str] = set()
        self.sync_calls: list[dict[str, Any]] = []
        self.service_state: dict[tuple[str, str], int] = {}
        self.trans_calls: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/cgi-bin/token", self.mp_token)
        app.router.add_get("/cgi-bin/gettoken", self.wecom_token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        app.router.add_post("/cgi-bin/message/send", self.send)
        app.router.add_post("/cgi-bin/kf/send_msg", self.send)
        app.router.add_post("/cgi-bin/kf/sync_msg", self.sync_msg)
        app.router.add_post("/cgi-bin/kf/service_state/get", self.state_get)
        app.router.add_post("/cgi-bin/kf/service_state/trans", self.state_trans)
        return app

    # test controls
    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def add_kf_message(self, **item: Any) -> dict[str, Any]:
        item.setdefault("msgid", f"msg{next(self._ids)}")
        item.setdefault("send_time", 1700000000)
        self.kf_messages.append(item)
        return item

    def texts_to(self, user: str) -> list[str]:
        return [s["text"]["content"] for s in self.sent if s.get("touser") == user]

    # endpoints
    async def _issue(self, app_id: str, secret: str) -> web.Response:
        self.token_calls += 1
        await asyncio.sleep(self.token_delay_s)
        if secret not in self.apps.get(app_id, set()):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = f"token-{next(self._ids)}"
        self.valid_tokens.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def mp_token(self, request: web.Request) -> web.Response:
        if request.query.get("grant_type") != "client_credential":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        return await self._issue(request.query.get("appid", ""), request.query.get("secret", ""))

    async def wecom_token(self, request: web.Request) -> web.Response:
        return await self._issue(request.query.get("corpid", ""), request.query.get("corpsecret", ""))

    def _auth(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self.valid_tokens:
            code = 42001 if token.startswith("token-") else 40014
            return web.json_response({"errcode": code, "errmsg": "access_token expired or invalid"})
        return None

    async def send(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        if body.get("msgtype") != "text" or not body.get("touser"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get("text") or {}).get("content") or ""
        if not content:
            return web.json_response({"errcode": 44004, "errmsg": "empty content"})
        if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
            return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        if request.path == "/cgi-bin/kf/send_msg" and not body.get("open_kfid"):
            return web.json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        self.sent.append(dict(body, path=request.path))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"sent{next(self._ids)}"})

    async def sync_msg(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        self.sync_calls.append(body)
        if body.get("token") and body["token"] not in self.kf_sync_tokens:
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        cursor = body.get("cursor") or ""
        start = int(cursor[1:]) if cursor.startswith("c") else 0
        limit = min(int(body.get("limit") or 1000), self.page_size)
        page = [m for m in self.kf_messages[start : start + limit]
                if (m.get("open_kfid") or (m.get("event") or {}).get("open_kfid")) == body.get("open_kfid")]
        end = min(start + limit, len(self.kf_messages))
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "next_cursor": f"c{end}", "has_more": int(end < len(self.kf_messages)),
             "msg_list": page}
        )

    async def state_get(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        state = self.service_state.get((body.get("open_kfid"), body.get("external_userid")), 0)
        return web.json_response({"errcode": 0, "errmsg": "ok", "service_state": state, "servicer_userid": ""})

    async def state_trans(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        key = (body.get("open_kfid"), body.get("external_userid"))
        new = int(body.get("service_state", -1))
        if new not in ALLOWED_TRANS.get(self.service_state.get(key, 0), set()):
            return web.json_response({"errcode": 95016, "errmsg": "invalid service state transition"})
        if new == 3 and not body.get("servicer_userid"):
            return web.json_response({"errcode": 95014, "errmsg": "servicer_userid required"})
        self.service_state[key] = new
        self.trans_calls.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
