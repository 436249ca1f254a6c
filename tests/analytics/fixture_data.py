"""A hand-built week of conversations whose metrics are worked out by hand in test_metrics.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
DAY = 86400.0
GROUPS = {"check_balance": "banking", "loan_info": "banking", "order_status": "shop", "ask_human": "general",
          "greet": "general", "thanks": "general"}


def user(sender: str, ts: float, intent: str, text: str = "", conf: float = 0.9,
         sentiment: Optional[float] = None) -> tuple:
    parse: dict[str, Any] = {"intent": {"name": intent, "confidence": conf}, "entities": [], "text": text}
    if sentiment is not None:
        parse["sentiment"] = {"score": sentiment}
    data = {"event": "user", "timestamp": ts, "text": text or intent, "parse_data": parse}
    return (sender, "user", ts, intent, None, json.dumps(data, ensure_ascii=False))


def bot(sender: str, ts: float, text: str = "ok", custom: Optional[dict] = None) -> tuple:
    data = {"event": "bot", "timestamp": ts, "text": text, "data": {"custom": custom} if custom else {}}
    return (sender, "bot", ts, None, None, json.dumps(data, ensure_ascii=False))


def action(sender: str, ts: float, name: str) -> tuple:
    return (sender, "action", ts, None, name, json.dumps({"event": "action", "timestamp": ts, "name": name}))


def session(sender: str, ts: float) -> list[tuple]:
    return [action(sender, ts, "action_session_start"),
            (sender, "session_started", ts, None, None, json.dumps({"event": "session_started"}))]


def events() -> list[tuple]:
    a2 = T0 + 2 * DAY
    rows: list[tuple] = [
        *session("a", T0 + 100),
        user("a", T0 + 101, "greet", "你好"), bot("a", T0 + 101.5),
        user("a", T0 + 110, "check_balance", "查余额"), action("a", T0 + 110.2, "action_answer_faq"),
        bot("a", T0 + 111, custom={"source": "faq"}),
        user("a", T0 + 120, "thanks", "谢谢"), bot("a", T0 + 120.5),
        *session("a", a2),
        user("a", a2 + 10, "check_balance", "余额多少"), bot("a", a2 + 11, custom={"source": "faq"}),
        user("b", T0 + 1000, "order_status", "where is my order", sentiment=-0.5),
        bot("b", T0 + 1002, custom={"source": "graph"}),
        user("b", T0 + 1010, "order_status", "my order?"), action("b", T0 + 1010.5, "action_answer_faq"),
        bot("b", T0 + 1011),
        user("b", T0 + 1020, "nlu_fallback", "asdf", conf=0.2), action("b", T0 + 1020.5, "action_fallback"),
        bot("b", T0 + 1021),
        user("b", T0 + 1030, "nlu_fallback", "qwer", conf=0.1), action("b", T0 + 1030.5, "action_fallback"),
        bot("b", T0 + 1031, custom={"handoff": {"queue": "general", "reason": "two_fallbacks"}}),
        user("c", T0 + 5000, "ask_human", "转人工", sentiment=-0.9), action("c", T0 + 5000.5, "action_handoff"),
        bot("c", T0 + 5001, custom={"handoff": {"queue": "senior", "reason": "angry"}}),
        user("d", T0 + 8000, "loan_info", "贷款利率"), bot("d", T0 + 8003, custom={"source": "case"}),
        # outside the period: ignored
        user("e", T0 - DAY, "check_balance"), bot("e", T0 - DAY + 1),
        # hostile row: malformed JSON, skipped and counted
        ("x", "user", T0 + 9000, "greet", None, "{not json"),
    ]
    return rows


def tickets() -> list[dict[str, Any]]:
    def t(tid: str, conv: str, queue: str, reason: str, created: float, claimed: Optional[float],
          closed: Optional[float], agent: Optional[str], rating: Optional[int]) -> dict[str, Any]:
        return {"id": tid, "conversation_id": conv, "channel": "rest", "queue": queue, "priority": 1,
                "reason": reason, "language": "zh", "status": "closed" if closed else "waiting", "agent": agent,
                "created_at": created, "claimed_at": claimed, "closed_at": closed,
                "disposition": "resolved" if closed else None, "rating": rating}

    return [
        t("t1", "b", "general", "two_fallbacks", T0 + 1032, T0 + 1092, T0 + 1392, "alice", 4),
        t("t2", "c", "senior", "angry", T0 + 5002, T0 + 5102, T0 + 5202, "bob", None),
        t("t3", "d", "loans", "explicit_request", T0 + 8004, T0 + 8010, T0 + 8110, "alice", 2),
        t("t4", "e", "general", "explicit_request", T0 - DAY, T0 - DAY + 5, T0 - DAY + 50, "bob", 1),
    ]
