"""Validation of inbound chat messages, shared by every channel connector.

A connector turns a raw request into a dict first; `parse_inbound` checks the fields
and returns clean values or raises `BadInput` with the HTTP status to answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from kefu.errors import BadInput
from kefu.text import normalize_text

MAX_SENDER_CHARS = 128
MAX_METADATA_KEYS = 32
MAX_JSON_DEPTH = 64  # Slack's rich-text blocks nest about 8 deep; a 100k-deep array is an attack
_SENDER = re.compile(r"^[\w.:@\-]+$")


@dataclass(frozen=True)
class Inbound:
    """A validated customer message: who sent it, the clean text, and metadata."""

    sender_id: str
    text: str
    metadata: dict[str, Any]
    truncated: bool


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads_json(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode untrusted JSON; BadInput (400) when it is invalid or nested deeper than `max_depth`.

    json.loads raises RecursionError, not a JSONDecodeError, on very deep nesting: uncaught, a 500.
    """
    try:
        value = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except UnicodeDecodeError as exc:
        raise BadInput("request body is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise BadInput(f"request body is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    except RecursionError as exc:
        raise BadInput(f"request body is nested deeper than {max_depth} levels") from exc
    if json_depth(value) > max_depth:
        raise BadInput(f"request body is nested deeper than {max_depth} levels")
    return value


def check_sender(sender: Any) -> str:
    """Sender ids are opaque but bounded: letters, digits and `_.:@-`, ≤128 chars."""
    if not isinstance(sender, str) or not sender.strip():
        raise BadInput("'sender' must be a non-empty string")
    sender = sender.strip()
    if len(sender) > MAX_SENDER_CHARS or not _SENDER.fullmatch(sender):
        raise BadInput(f"'sender' must be at most {MAX_SENDER_CHARS} letters, digits or _.:@-")
    return sender


def parse_inbound(
    payload: Any, *, max_chars: int, sender_key: str = "sender", message_key: str = "message"
) -> Inbound:
    """Check a decoded JSON payload and return the message to hand to Rasa."""
    if not isinstance(payload, dict):
        raise BadInput("the request body must be a JSON object")
    sender = check_sender(payload.get(sender_key))
    raw_text = payload.get(message_key, "")
    if raw_text is None:
        raw_text = ""
    if not isinstance(raw_text, str):
        raise BadInput(f"'{message_key}' must be a string")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_KEYS:
        raise BadInput(f"'metadata' must be an object with at most {MAX_METADATA_KEYS} keys")
    text = normalize_text(raw_text)
    truncated = len(text) > max_chars
    if truncated:
        text = normalize_text(text, max_chars)
    return Inbound(sender_id=sender, text=text, metadata=metadata, truncated=truncated)


def optional_str(value: Any, limit: int = 128) -> Optional[str]:
    """Return `value` if it is a short string, else None (for ids from untrusted clients)."""
    if isinstance(value, str) and 0 < len(value) <= limit and _SENDER.fullmatch(value):
        return value
    return None
