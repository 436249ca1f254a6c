"""Store URLs (FAQ, cases, graph, Elasticsearch) and the backend each URL scheme picks.

A `StoreURL` is a `kefu.dburl.DatabaseURL` (parsed once, password hidden in its repr) whose `str()`
is the redacted form, because stores put their URL into log lines and error messages; drivers
read the full URL from `.raw` or the parsed parts.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Union

from kefu.dburl import DatabaseURL, redact
from knowledge.errors import BadInput

# what the stores' constructors and open_* functions take: a URL string, a DatabaseURL or a StoreURL
AnyURL = Union[str, DatabaseURL]


class StoreURL(DatabaseURL):
    """A parsed store URL such as `falkordb://127.0.0.1:6379/kefu` or `postgresql://u:p@h/db`."""

    __slots__ = ()

    @classmethod
    def parse(cls, url: AnyURL) -> StoreURL:
        """Parse and check `url` (a scheme and a valid port), raising BadInput otherwise."""
        parsed = cls(url) if isinstance(url, str | DatabaseURL) else None
        if parsed is None or "://" not in parsed.raw:
            raise BadInput(f"not a store URL: {redact(str(url))!r}")
        try:
            parsed.port  # noqa: B018 - a bad port fails here, not at the first connection
        except BadInput as exc:
            raise BadInput(f"bad port in store URL {parsed.redacted!r}") from exc
        return parsed

    @property
    def raw(self) -> str:
        """The full URL, password included: for drivers only."""
        return DatabaseURL.__str__(self)

    def __str__(self) -> str:
        return self.redacted


def load_backend(url: AnyURL, backends: Mapping[str, str], **kwargs: Any) -> Any:
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
