"""Channel state shared across Rasa processes: message dedup, access tokens, numbered options.

Short interface, one backend per module (`state_redis`, `state_pg`), chosen by URL scheme and
imported lazily: Redis when KEFU_REDIS_URL is set, else the tracker's PostgreSQL.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Optional, Protocol, Union

from kefu.config import Settings
from kefu.dburl import DatabaseURL, redact, tracker_database_url
from kefu.errors import ConfigError

BACKENDS = {
    "redis": "custom_components.channels.wechat.state_redis:RedisState",
    "rediss": "custom_components.channels.wechat.state_redis:RedisState",
    "postgresql": "custom_components.channels.wechat.state_pg:PostgresState",
    "postgres": "custom_components.channels.wechat.state_pg:PostgresState",
}


class KeyValue(Protocol):
    """What the API client needs: a ChannelState, or a channel that forwards to its state lazily."""

    async def claim(self, key: str, value: str, ttl_s: int) -> bool: ...

    async def get(self, key: str) -> Optional[str]: ...

    async def put(self, key: str, value: str, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> None: ...


class ChannelState(ABC):
    """Expiring string keys. Every method raises StoreUnavailable when the server is down."""

    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        self.url = str(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r})"

    @abstractmethod
    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """Set `key` if absent (or expired); True only for the caller that set it."""

    @abstractmethod
    async def get(self, key: str) -> Optional[str]:
        """The live value of `key`, or None."""

    @abstractmethod
    async def put(self, key: str, value: str, ttl_s: int) -> None:
        """Set `key` unconditionally."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove `key` (no error if absent)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections."""


def state_url(settings: Settings) -> str:
    """Redis when configured, else the tracker's PostgreSQL."""
    url = settings.redis_url or tracker_database_url(settings)
    if not url:
        raise ConfigError("WeChat channels need KEFU_REDIS_URL or KEFU_POSTGRES_URL for shared state")
    return str(url)


def open_state(url: Union[str, DatabaseURL]) -> ChannelState:
    scheme = str(url).split(":", 1)[0].lower()
    if scheme not in BACKENDS:
        raise ConfigError(f"no channel-state backend for scheme {scheme!r}")
    module, _, name = BACKENDS[scheme].partition(":")
    return getattr(importlib.import_module(module), name)(url)
