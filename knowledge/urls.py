"""Store URLs parsed once into an object whose repr never shows the password (like encode/databases)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from knowledge.errors import BadInput


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL such as `falkordb://127.0.0.1:6379/kefu` or `postgresql://u:p@h/db`."""

    raw: str = field(repr=False)
    scheme: str
    hostname: Optional[str]
    port: Optional[int]
    username: Optional[str]
    password: Optional[str] = field(repr=False)
    path: str
    options: Mapping[str, str]

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        if not isinstance(url, str) or "://" not in url:
            raise BadInput(f"not a store URL: {_redacted(str(url))!r}")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise BadInput(f"bad port in store URL {_redacted(url)!r}") from exc
        return cls(
            raw=url,
            scheme=parts.scheme.lower(),
            hostname=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            path=parts.path.lstrip("/"),
            options=dict(parse_qsl(parts.query)),
        )

    @property
    def database(self) -> str:
        """The first path segment (database, graph or index name), '' when absent."""
        return self.path.split("/", 1)[0]

    def __str__(self) -> str:
        return _redacted(self.raw)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def load_backend(url: str | StoreURL, backends: Mapping[str, str], **kwargs: Any) -> Any:
    """Instantiate the backend registered for the URL's scheme; `backends` maps scheme → "module:Class".

    Backend modules are imported only here, so a missing optional driver only matters when used.
    """
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    target = backends.get(parsed.scheme)
    if target is None:
        raise BadInput(f"unsupported scheme {parsed.scheme!r}; expected one of {', '.join(sorted(backends))}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(parsed, **kwargs)
