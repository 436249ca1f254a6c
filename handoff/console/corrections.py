"""Agents' intent corrections: stored on the ticket as `reason_detail.corrected_intent`, which
`kefu iterate` collects from closed tickets as proposed NLU examples for a designer's review."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from handoff.console.web import ApiError
from kefu.domain import domain_intents

MAX_INTENT_CHARS = 64


def check_intent(value: Any) -> str:
    """The intent if it is one of the domain's intents; 400 for anything else (never echoed at length)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError("intent must be a non-empty string", 400)
    if len(value) > MAX_INTENT_CHARS:
        raise ApiError(f"intent is longer than {MAX_INTENT_CHARS} characters", 400)
    intent = value.strip()
    if intent not in domain_intents():
        raise ApiError(f"unknown intent {intent[:MAX_INTENT_CHARS]!r}: not in the dialogue domain", 400)
    return intent


async def record_correction(pool: Any, ticket_id: str, intent: str, agent: str) -> dict[str, Any]:
    """Merge the correction into the ticket's reason_detail (one statement); returns the new detail."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE handoff_tickets SET reason_detail = reason_detail || %s WHERE id = %s RETURNING reason_detail",
            (Jsonb({"corrected_intent": intent, "corrected_by": agent}), ticket_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise ApiError("no such ticket in your queues", 404)
    return row[0]
