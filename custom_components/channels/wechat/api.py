"""The few WeChat / WeCom server APIs the connectors call, against a configurable base URL.

wechatpy 1.8.18 (the latest stable) has no WeCom `kf` API, so the kf calls are written here
(documented paths: /cgi-bin/kf/sync_msg, send_msg, service_state/get, service_state/trans),
with the access token and customer-service sends they share. The token is cached in the
channel state (Redis or PostgreSQL), refreshed `REFRESH_MARGIN_S` before expiry, and only
one process refreshes at a time. URLs carrying tokens or secrets are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import aiohttp

from custom_components.channels.wechat.state import KeyValue
from kefu.errors import KefuError, StoreUnavailable

log = logging.getLogger(__name__)

MP_BASE = "https://api.weixin.qq.com"
WECOM_BASE = "https://qyapi.weixin.qq.com"
REFRESH_MARGIN_S = 300
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential / invalid token / token expired
SERVICE_STATE_BOT = 1  # 智能助手接待
SERVICE_STATE_HUMAN = 3  # 人工接待
SERVICE_STATE_ENDED = 4  # 已结束/未处理


class WeChatApiError(KefuError):
    """The platform answered with a non-zero errcode (or not at all)."""

    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"{path}: errcode {errcode} ({errmsg[:120]})")
        self.errcode = errcode


class WeChatApi:
    """Access token + JSON calls for one app: `kind` is "mp" (Official Account) or "wecom"."""

    def __init__(
        self, kind: str, app_id: str, secret: str, state: KeyValue, base_url: Optional[str] = None,
        timeout_s: float = 10.0, scope: str = "",
    ) -> None:
        if kind not in ("mp", "wecom"):
            raise ValueError(f"unknown WeChat API kind {kind!r}")
        self.kind = kind
        self.app_id = app_id
        self.scope = scope  # one WeCom corp has a token per secret (app, kf): keep them apart
        self._secret = secret
        self.state = state
        self.base_url = (base_url or (MP_BASE if kind == "mp" else WECOM_BASE)).rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def __repr__(self) -> str:
        return f"WeChatApi(kind={self.kind!r}, app_id={self.app_id!r}, base_url={self.base_url!r}, secret=***)"

    @property
    def _token_key(self) -> str:
        return f"token:{self.kind}:{self.app_id}:{self.scope}"

    async def _request(self, method: str, path: str, params: dict[str, str], body: Any = None) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.request(method, self.base_url + path, params=params, json=body) as resp:
                    if resp.status != 200:
                        raise WeChatApiError(path, -resp.status, "HTTP status")
                    data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise WeChatApiError(path, -1, type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise WeChatApiError(path, -2, "response is not a JSON object")
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise WeChatApiError(path, errcode, str(data.get("errmsg", "")))
        return data

    async def _fetch_token(self) -> tuple[str, int]:
        if self.kind == "mp":
            params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}
            data = await self._request("GET", "/cgi-bin/token", params)
        else:
            data = await self._request("GET", "/cgi-bin/gettoken", {"corpid": self.app_id, "corpsecret": self._secret})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatApiError("gettoken", -3, "no access_token in the response")
        return token, int(data.get("expires_in") or 7200)

    async def access_token(self, wait_s: float = 15.0) -> str:
        """Cached token; on a miss exactly one process refreshes while the others wait."""
        token = await self.state.get(self._token_key)
        if token:
            return token
        lock = "lock:" + self._token_key
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            if await self.state.claim(lock, "1", 30):
                try:
                    token = await self.state.get(self._token_key)
                    if token:
                        return token
                    token, expires_in = await self._fetch_token()
                    await self.state.put(self._token_key, token, max(60, expires_in - REFRESH_MARGIN_S))
                    log.info("wechat: refreshed the %s access token of %s", self.kind, self.app_id)
                    return token
                finally:
                    await self.state.delete(lock)
            await asyncio.sleep(0.05)
            token = await self.state.get(self._token_key)
            if token:
                return token
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable("timed out waiting for another process to refresh the access token")

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` with the access token; a rejected token is dropped and retried once."""
        for attempt in (1, 2):
            token = await self.access_token()
            try:
                return await self._request("POST", path, {"access_token": token}, body)
            except WeChatApiError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    await self.state.delete(self._token_key)
                    continue
                raise
        raise AssertionError("unreachable")

    # Official Account customer-service message / WeCom app message
    async def send_text(self, to_user: str, text: str, agent_id: Optional[str] = None) -> None:
        if self.kind == "mp":
            body = {"touser": to_user, "msgtype": "text", "text": {"content": text}}
            await self.call("/cgi-bin/message/custom/send", body)
        else:
            body = {"touser": to_user, "msgtype": "text", "agentid": int(agent_id or 0), "text": {"content": text}}
            await self.call("/cgi-bin/message/send", body)

    # WeChat Customer Service (WeCom kf)
    async def kf_sync_msg(self, cursor: str, token: str, open_kfid: str, limit: int = 1000) -> dict[str, Any]:
        body: dict[str, Any] = {"cursor": cursor, "token": token, "limit": limit, "open_kfid": open_kfid}
        return await self.call("/cgi-bin/kf/sync_msg", body)

    async def kf_send_text(self, open_kfid: str, external_userid: str, text: str) -> None:
        body = {"touser": external_userid, "open_kfid": open_kfid, "msgtype": "text", "text": {"content": text}}
        await self.call("/cgi-bin/kf/send_msg", body)

    async def kf_service_state(self, open_kfid: str, external_userid: str) -> int:
        body = {"open_kfid": open_kfid, "external_userid": external_userid}
        data = await self.call("/cgi-bin/kf/service_state/get", body)
        return int(data.get("service_state", 0))

    async def kf_trans(self, open_kfid: str, external_userid: str, state: int, servicer: Optional[str] = None) -> None:
        body: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external_userid, "service_state": state}
        if servicer:
            body["servicer_userid"] = servicer
        await self.call("/cgi-bin/kf/service_state/trans", body)
