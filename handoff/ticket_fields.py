"""Validation of handoff-ticket fields before they reach PostgreSQL.

Kept apart from the store so the rules (what a ticket may hold, how big) read in one place
and every caller (action server, console, adapters) gets the same clear `BadInput`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from kefu.errors import BadInput

# the shared interface's reasons, plus "complaint" and "assist" (automation level assist) from routing.yml
REASONS = frozenset(
    {
        "angry", "explicit_request", "low_confidence", "specialist", "two_fallbacks", "out_of_scope", "callback",
        "complaint", "assist",
    }
)
STATUSES = frozenset({"waiting", "assigned", "closed", "callback"})
CREATE_STATUSES = frozenset({"waiting", "callback"})
LANGUAGES = frozenset({"zh", "en"})
MESSAGE_ROLES = frozenset({"customer", "agent", "system", "bot"})
QUEUE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
MAX_ID = 255
MAX_TEXT = 8000
MAX_JSON_BYTES = 256 * 1024
MAX_LIST_ITEMS = 200
MAX_PRIORITY = 1000

JSON_FIELDS = ("reason_detail", "intent_ranking", "sentiment_trend", "transcript", "suggestions")
REQUIRED = ("conversation_id", "channel", "queue", "reason")
ALLOWED = frozenset({*REQUIRED, *JSON_FIELDS, "priority", "language", "status"})


def strip_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB cannot hold U+0000: drop it everywhere, keep the rest."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {strip_nul(str(k)): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strip_nul(v) for v in value]
    return value


def identifier(name: str, value: Any, limit: int = MAX_ID) -> str:
    """A non-empty single-line string of at most `limit` characters."""
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, got {type(value).__name__}")
    value = strip_nul(value).strip()
    if not value:
        raise BadInput(f"{name} must not be empty")
    if len(value) > limit:
        raise BadInput(f"{name} is longer than {limit} characters")
    if any(ch in value for ch in "\r\n"):
        raise BadInput(f"{name} must be a single line")
    return value


def queue_name(value: Any) -> str:
    if not isinstance(value, str) or not QUEUE_RE.match(value):
        raise BadInput(f"queue must match {QUEUE_RE.pattern}, got {str(value)[:60]!r}")
    return value


def json_value(name: str, value: Any, kind: type) -> Any:
    """A JSON-serialisable dict or list of bounded size, NULs removed."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise BadInput(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    if kind is list and len(value) > MAX_LIST_ITEMS:
        raise BadInput(f"{name} has more than {MAX_LIST_ITEMS} items")
    value = strip_nul(value)
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{name} is not JSON-serialisable: {exc}") from exc
    if len(encoded.encode("utf-8")) > MAX_JSON_BYTES:
        raise BadInput(f"{name} is larger than {MAX_JSON_BYTES} bytes")
    return value


def integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise BadInput(f"{name} must be between {low} and {high}, got {value}")
    return value


def message_text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadInput(f"message text must be a string, got {type(value).__name__}")
    value = strip_nul(value)
    if not value.strip():
        raise BadInput("message text must not be empty")
    if len(value) > MAX_TEXT:
        raise BadInput(f"message text is longer than {MAX_TEXT} characters")
    return value


def message_role(value: Any) -> str:
    if value not in MESSAGE_ROLES:
        raise BadInput(f"role must be one of {sorted(MESSAGE_ROLES)}, got {str(value)[:40]!r}")
    return str(value)


def ticket_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise the keyword arguments of `TicketStore.create`."""
    unknown = set(fields) - ALLOWED
    if unknown:
        raise BadInput(f"unknown ticket fields: {sorted(unknown)}")
    missing = [name for name in REQUIRED if fields.get(name) in (None, "")]
    if missing:
        raise BadInput(f"missing ticket fields: {missing}")
    reason = fields["reason"]
    if reason not in REASONS:
        raise BadInput(f"reason must be one of {sorted(REASONS)}, got {str(reason)[:40]!r}")
    language = fields.get("language", "zh")
    if language not in LANGUAGES:
        raise BadInput(f"language must be one of {sorted(LANGUAGES)}, got {str(language)[:20]!r}")
    status = fields.get("status", "waiting")
    if status not in CREATE_STATUSES:
        raise BadInput(f"a new ticket's status must be one of {sorted(CREATE_STATUSES)}, got {str(status)[:20]!r}")
    clean: dict[str, Any] = {
        "conversation_id": identifier("conversation_id", fields["conversation_id"]),
        "channel": identifier("channel", fields["channel"], 64),
        "queue": queue_name(fields["queue"]),
        "priority": integer("priority", fields.get("priority", 0), 0, MAX_PRIORITY),
        "reason": reason,
        "language": language,
        "status": status,
        "reason_detail": json_value("reason_detail", fields.get("reason_detail"), dict),
    }
    for name in JSON_FIELDS[1:]:
        clean[name] = json_value(name, fields.get(name), list)
    return clean
