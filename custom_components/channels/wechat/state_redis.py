"""Redis backend of the channel state (SET NX EX: atomic across processes)."""

from __future__ import annotations

from typing import Any, Optional, Union

import redis
import redis.asyncio as aioredis

from custom_components.channels.wechat.state import ChannelState
from kefu.dburl import DatabaseURL
from kefu.errors import StoreUnavailable

PREFIX = "kefu:channel:"


class RedisState(ChannelState):
    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        super().__init__(url)
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = aioredis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        return self._client

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._redis(), method)(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis at {self!r} is unavailable") from exc

    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(await self._call("set", PREFIX + key, value, nx=True, ex=max(1, ttl_s)))

    async def get(self, key: str) -> Optional[str]:
        value = await self._call("get", PREFIX + key)
        return value.decode("utf-8") if isinstance(value, bytes) else value

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        await self._call("set", PREFIX + key, value, ex=max(1, ttl_s))

    async def delete(self, key: str) -> None:
        await self._call("delete", PREFIX + key)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
