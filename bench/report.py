"""`kefu report` on 1 million synthetic tracker events (the issue asks for < 60 s on 2 cores).

Writes N Rasa-shaped events (user events with a full parse_data and 10-entry intent ranking,
actions, bot events with answer sources and handoff markers) plus the matching handoff tickets
into a fresh database with COPY, then times the report pipeline exactly as `kefu report` runs it
(chunked load with progress bar, metrics, charts, CSVs, HTML). Setup time is reported apart.

    python bench/report.py [--events 1000000] [--out /tmp/kefu-bench-report]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from analytics.loader import EVENTS_DDL, Period  # noqa: E402
from analytics.report import build_report, default_intent_groups  # noqa: E402
from handoff.tickets import SCHEMA  # noqa: E402
from kefu.pgserver import EmbeddedPostgres, ensure_database, with_database  # noqa: E402

DAY = 86400.0
TEXTS = {"check_balance": "我的余额还有多少", "order_status": "where is my order", "ask_fees": "信用卡年费多少",
         "report_lost_card": "我的卡丢了", "return_item": "我要退货", "reset_password": "how do i reset my password",
         "loan_info": "贷款利率是多少", "greet": "你好", "thanks": "谢谢", "nlu_fallback": "嗯嗯那个啥",
         "ask_human": "转人工"}
INTENTS = list(TEXTS)
WEIGHTS = [12, 12, 8, 5, 6, 6, 5, 10, 8, 6, 3]
SOURCES = ["faq", "faq", "faq", "graph", "case", "rule"]


def user_data(ts: float, intent: str, conf: float, sentiment: float, rng: random.Random) -> str:
    ranking = [{"name": intent, "confidence": conf}] + [
        {"name": n, "confidence": round((1 - conf) / 9, 4)} for n in rng.sample(INTENTS, 9)]
    return json.dumps({
        "event": "user", "timestamp": ts, "metadata": {}, "text": TEXTS[intent], "input_channel": "rest",
        "message_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "parse_data": {"intent": {"name": intent, "confidence": conf}, "entities": [], "text": TEXTS[intent],
                       "message_id": None, "metadata": {}, "intent_ranking": ranking,
                       "sentiment": {"score": sentiment, "label": "negative" if sentiment < -0.3 else "neutral"}},
    }, ensure_ascii=False)


def generate(n_events: int, start: float, seconds: float, seed: int = 7):
    """Yield (events rows, ticket rows) of whole conversations until n_events rows are produced."""
    rng = random.Random(seed)
    events, tickets, conv = [], [], 0
    while len(events) < n_events:
        conv += 1
        sender = f"c{rng.randrange(n_events // 20 + 1)}"  # returning customers → FCR repeats
        ts = start + rng.random() * (seconds - 3600)
        events.append((sender, "action", ts, None, "action_session_start", '{"event": "action"}'))
        events.append((sender, "session_started", ts, None, None, '{"event": "session_started"}'))
        handed = False
        for _ in range(rng.choice((1, 2, 2, 3, 4))):
            ts += rng.uniform(3, 40)
            intent = rng.choices(INTENTS, WEIGHTS)[0]
            conf = round(rng.uniform(0.3, 0.99), 3)
            events.append((sender, "user", ts, intent, None, user_data(ts, intent, conf, rng.uniform(-1, 1), rng)))
            ts += rng.uniform(0.05, 1.5)
            if intent == "ask_human" or (intent == "nlu_fallback" and rng.random() < 0.3):
                queue = rng.choice(["general", "senior", "cards"])
                custom = {"handoff": {"queue": queue, "reason": "explicit_request"}}
                action, handed = "action_handoff", True
            elif intent == "nlu_fallback":
                custom, action = {}, "action_fallback"
            else:
                custom, action = {"source": rng.choice(SOURCES)}, "action_answer_faq"
            events.append((sender, "action", ts, None, action, '{"event": "action"}'))
            bot = {"event": "bot", "text": "好的", "data": {"custom": custom}}
            events.append((sender, "bot", ts + 0.01, None, None, json.dumps(bot, ensure_ascii=False)))
            events.append((sender, "action", ts + 0.02, None, "action_listen", '{"event": "action"}'))
            if handed:
                claimed = ts + rng.uniform(5, 300)
                closed = claimed + rng.uniform(30, 900)
                tickets.append((uuid.UUID(int=rng.getrandbits(128)).hex, sender, "rest", custom["handoff"]["queue"],
                                1, rng.choice(["angry", "explicit_request", "low_confidence", "two_fallbacks"]),
                                "zh", "closed", rng.choice(["alice", "bob", "carol", "dave"]), ts, claimed, closed,
                                "resolved", rng.choice([None, 1, 2, 3, 4, 5, 5, 4])))
                break
    return events[:n_events], tickets


def load(url: str, events: list, tickets: list) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(EVENTS_DDL)
        conn.execute(SCHEMA)
        with conn.cursor().copy(
            "COPY events (sender_id, type_name, timestamp, intent_name, action_name, data) FROM STDIN"
        ) as copy:
            for row in events:
                copy.write_row(row)
        with conn.cursor().copy(
            "COPY handoff_tickets (id, conversation_id, channel, queue, priority, reason, language, status, agent, "
            "created_at, claimed_at, closed_at, disposition, rating) FROM STDIN"
        ) as copy:
            for t in tickets:
                copy.write_row(t[:9] + tuple(time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(x)) for x in t[9:12])
                               + t[12:])
        conn.execute("ANALYZE events")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "kefu-bench-report")
    args = parser.parse_args()
    end = time.time()
    period = Period(end - 7 * DAY, end)
    t0 = time.perf_counter()
    events, tickets = generate(args.events, period.start, period.seconds)
    gen_s = time.perf_counter() - t0
    server = None
    configured = os.environ.get("KEFU_POSTGRES_URL")
    with tempfile.TemporaryDirectory() as tmp:
        if configured:
            admin = with_database(configured, "postgres")
        else:
            server = EmbeddedPostgres(Path(tmp) / "pgdata", delete_on_stop=True)
            admin = server.start()
        name = f"kefu_bench_{uuid.uuid4().hex[:8]}"
        url = with_database(admin, name)
        ensure_database(url)
        try:
            t0 = time.perf_counter()
            load(url, events, tickets)
            load_s = time.perf_counter() - t0
            del events
            result = build_report(url, period, args.out, groups=default_intent_groups(), progress=True)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if server is not None:
                server.stop()
    rate = result.events / result.seconds
    print()
    print("| step | value |")
    print("|---|---|")
    print(f"| synthetic events generated | {args.events:,} in {gen_s:.1f} s |")
    print(f"| tickets | {len(tickets):,} |")
    print(f"| COPY into PostgreSQL (setup, not timed) | {load_s:.1f} s |")
    print(f"| events in report period | {result.events:,} |")
    print(f"| conversations | {result.summary['conversations']:,.0f} |")
    print(f"| **kefu report pipeline (load + metrics + charts + CSV + HTML)** | **{result.seconds:.1f} s** |")
    print(f"| throughput | {rate:,.0f} events/s |")
    print(f"| under 60 s | {'yes' if result.seconds < 60 else 'NO'} |")
    print(f"| report | {result.out_dir / 'index.html'} |")
    return 0 if result.seconds < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
