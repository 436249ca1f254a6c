"""Kefu's exception hierarchy: callers catch these, never driver or library errors."""


class KefuError(Exception):
    """Base class of every error Kefu raises on purpose."""


class ConfigError(KefuError):
    """A configuration value is missing or malformed (names the variable)."""


class BadInput(KefuError):
    """A request or file from outside was rejected; `status` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class StoreUnavailable(KefuError):
    """A backing server (PostgreSQL, Redis, ...) could not be reached or started."""


class NotFound(KefuError):
    """The requested record does not exist."""
