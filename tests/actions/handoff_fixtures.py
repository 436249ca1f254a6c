"""Fixtures for the handoff/routing action tests: a real PostgreSQL database, a routing file
with fixed hours (tests must not depend on the time of day) and trackers with a channel."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Optional

import pytest
import yaml
from rasa_sdk import Tracker

from actions.services import Services
from kefu.config import PROJECT_ROOT
from kefu.pgserver import ensure_database, with_database
from tests.servers import drop_database

ALWAYS_OPEN = {"always": True}
USER_TIMESTAMP = 1_700_000_000.0  # every fixture user message's
NEVER_OPEN = {"days": "mon-sun", "open": "00:00", "close": "00:00"}


def routing_file(tmp_path: Path, **changes: Any) -> Path:
    raw = yaml.safe_load((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"))
    raw["defaults"]["hours"] = ALWAYS_OPEN
    for group in raw["groups"].values():
        group.pop("hours", None)
    for key, value in changes.items():
        if key == "group_overrides":
            for name, spec in value.items():
                raw["queues" if name in raw["queues"] else "groups"][name].update(spec)
        else:
            raw[key] = value
    path = tmp_path / f"routing-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def handoff_db(pg_admin_url: str) -> Iterator[str]:
    name = f"kefu_actions_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    ensure_database(url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
async def handoff_env(
    handoff_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services: Services
) -> AsyncIterator[str]:
    """Point the action server's settings at the test database and an always-open routing file."""
    import psycopg

    with psycopg.connect(handoff_db, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('handoff_tickets')").fetchone()[0]
        if exists:
            conn.execute("TRUNCATE handoff_messages, handoff_tickets")
    monkeypatch.setenv("KEFU_POSTGRES_URL", handoff_db)
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(routing_file(tmp_path)))
    yield handoff_db
    await services.aclose()  # the pool belongs to this test's event loop


def parse(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    return {
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence}],
        "entities": [],
        "text": text,
        **extra,
    }


def user(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": USER_TIMESTAMP, "input_channel": "socketio",
            "parse_data": parse(text, intent, confidence, **extra)}


def tracker(
    text: str,
    intent: str,
    confidence: float = 0.95,
    sender: Optional[str] = None,
    history: Optional[list] = None,
    slots: Optional[dict] = None,
    active_loop: Optional[str] = None,
    **extra: Any,
) -> Tracker:
    latest = user(text, intent, confidence, **extra)
    return Tracker(
        sender_id=sender or f"conv-{uuid.uuid4().hex[:8]}",
        slots={"language": "zh", **(slots or {})},
        latest_message={**latest["parse_data"], "text": text},
        events=[*(history or []), latest],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )
