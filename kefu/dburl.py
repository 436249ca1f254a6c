"""Database URLs parsed once, shown without their password (modelled on encode/databases' DatabaseURL).

`DatabaseURL` is what drivers get (`str(url)` is the full URL) and what logs show (`repr(url)` and
`url.redacted` hide the password). `redact` is the one password redactor for anything shown, and
`tracker_database_url` the one answer to "which database holds Rasa's tracker store and the tickets".
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Protocol, Union
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from kefu.errors import BadInput

MASK = "***"
# a URL inside free text (an error message, a command line): scheme://... up to whitespace or a quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class DatabaseURL:
    """A parsed URL such as `postgresql://user:pw@host:5432/kefu?sslmode=require`.

    Immutable; compares equal to another DatabaseURL (or string) of the same full text.
    """

    __slots__ = ("_url", "_parts")

    def __init__(self, url: Union[str, DatabaseURL]) -> None:
        if isinstance(url, DatabaseURL):
            url = url._url
        if not isinstance(url, str):
            raise BadInput(f"not a URL: {type(url).__name__}")
        self._url = url
        self._parts = urlsplit(url)

    @property
    def scheme(self) -> str:
        return self._parts.scheme.lower()

    @property
    def username(self) -> Optional[str]:
        return unquote(self._parts.username) if self._parts.username else None

    @property
    def password(self) -> Optional[str]:
        return unquote(self._parts.password) if self._parts.password else None

    @property
    def hostname(self) -> Optional[str]:
        """The host of the netloc (None for a Unix-socket URL, whose directory is `options["host"]`)."""
        return self._parts.hostname

    @property
    def port(self) -> Optional[int]:
        try:
            return self._parts.port
        except ValueError as exc:
            raise BadInput(f"bad port in URL {self.redacted!r}") from exc

    @property
    def path(self) -> str:
        """The path without its leading slashes: `kefu`, or `index/more` for stores that nest."""
        return self._parts.path.lstrip("/")

    @property
    def database(self) -> str:
        """The first path segment (database, graph or index name); '' when the URL names none."""
        return unquote(self.path.split("/", 1)[0])

    @property
    def options(self) -> Mapping[str, str]:
        """Query parameters (`?sslmode=require&host=/run/pg`)."""
        return dict(parse_qsl(self._parts.query))

    @property
    def redacted(self) -> str:
        """The URL with any password replaced by ***, for logs, reprs and error messages."""
        return _redact_one(self._url)

    def with_database(self, name: str) -> DatabaseURL:
        """The same server (host, socket, credentials, options) with database `name`."""
        return self.replace(database=name)

    def replace(self, **changes: Any) -> DatabaseURL:
        """A copy with some of scheme, username, password, hostname, port, database, options changed."""
        unknown = set(changes) - {"scheme", "username", "password", "hostname", "port", "database", "options"}
        if unknown:
            raise TypeError(f"DatabaseURL.replace() got unexpected fields {sorted(unknown)}")
        parts = self._parts
        if {"username", "password", "hostname", "port"} & set(changes):
            parts = parts._replace(netloc=self._netloc(changes))
        if "scheme" in changes:
            parts = parts._replace(scheme=changes["scheme"])
        if "database" in changes:
            parts = parts._replace(path="/" + changes["database"])
        if "options" in changes:
            parts = parts._replace(query=urlencode(changes["options"]))
        text = urlunsplit(parts)
        if not parts.netloc and self._url[len(self._parts.scheme) :].startswith("://"):
            # urlunsplit drops an empty netloc's `//` for schemes it does not know (postgresql:///db?host=...)
            text = f"{parts.scheme}://{text[len(parts.scheme) + 1 :]}"
        return DatabaseURL(text)

    def _netloc(self, changes: Mapping[str, Any]) -> str:
        username = changes.get("username", self.username)
        password = changes.get("password", self.password)
        hostname = changes.get("hostname", self._parts.hostname)
        port = changes.get("port", self._parts.port)
        userinfo = quote(username, safe="") if username else ""
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        host = f"[{hostname}]" if hostname and ":" in hostname else (hostname or "")
        return (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port is not None else "")

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.redacted!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DatabaseURL):
            return self._url == other._url
        if isinstance(other, str):
            return self._url == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._url)

    def __bool__(self) -> bool:
        return bool(self._url)


def _redact_one(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return url.replace(parts.netloc, netloc, 1)


def redact(url_or_text: Union[str, DatabaseURL, None]) -> str:
    """`url_or_text` with every URL password replaced by ***: a URL, a DatabaseURL, or a message
    that quotes URLs. '' for None or ''."""
    if not url_or_text:
        return ""
    if isinstance(url_or_text, DatabaseURL):
        return url_or_text.redacted
    text = str(url_or_text)
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: _redact_one(found.group(0)), text)


class DatabaseSettings(Protocol):
    """The two settings the resolver reads (kefu.config.Settings has them; config imports this module)."""

    @property
    def postgres_url(self) -> Optional[str]: ...

    @property
    def database(self) -> str: ...


def tracker_database_url(settings: DatabaseSettings) -> Optional[DatabaseURL]:
    """The database of Rasa's tracker store (and of tickets, channel state, reports), or None.

    KEFU_POSTGRES_URL as configured; a server URL that names no database gets the configured
    `settings.database` (KEFU_DATABASE). With no URL configured there is none here: `kefu run`
    starts the embedded server and passes its URL, database included, to its children in
    KEFU_POSTGRES_URL; offline tools start the embedded server themselves.
    """
    if not settings.postgres_url:
        return None
    url = DatabaseURL(settings.postgres_url)
    return url if url.database else url.with_database(settings.database)
