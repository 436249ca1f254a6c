"""A small JSON-over-HTTP helper shared by the Chatwoot and Slack adapters (aiohttp)."""

from __future__ import annotations

from typing import Any, Optional

import aiohttp

from kefu.errors import KefuError, StoreUnavailable


class AdapterUnavailable(StoreUnavailable):
    """The live-chat service did not answer, or answered with an error."""


class JsonClient:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    def __repr__(self) -> str:  # never show the auth headers
        return f"JsonClient({self.base_url!r})"

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        if self._session is None:
            raise KefuError("adapter HTTP client not started")
        try:
            async with self._session.post(self.base_url + path, json=body) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 300:
                    raise AdapterUnavailable(f"{self.base_url} answered {resp.status} to {path}: {str(data)[:200]}")
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AdapterUnavailable(f"cannot reach {self.base_url}{path}: {exc.__class__.__name__}") from exc
