"""Load Rasa's tracker-store events and the handoff tickets into pandas, in chunks.

The SQL tracker store (table `events`: id, sender_id, type_name, timestamp, intent_name,
action_name, data JSON text) and `handoff_tickets` are the only sources: there is no second
logging path. Message texts leave this module with personal numbers masked (kefu.pii), so no
report, export or job built on it holds them raw. JSON fields are extracted by PostgreSQL
(`COPY (SELECT ...) TO STDOUT`) so a million events never become a million Python dicts; a
chunk whose `data` holds invalid JSON is re-read row by row in Python and the bad rows are skipped and counted.
"""

from __future__ import annotations

import io
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import psycopg

from kefu.dburl import redact
from kefu.errors import BadInput, StoreUnavailable
from kefu.pii import mask_text

log = logging.getLogger(__name__)

# Rasa 3.6 SQLTrackerStore's table, for fixtures and the benchmark (Rasa creates it itself at run time).
EVENTS_DDL = """
CREATE SEQUENCE IF NOT EXISTS events_seq;
CREATE TABLE IF NOT EXISTS events (
    id integer PRIMARY KEY DEFAULT nextval('events_seq'),
    sender_id varchar(255) NOT NULL,
    type_name varchar(255) NOT NULL,
    timestamp double precision,
    intent_name varchar(255),
    action_name varchar(255),
    data text
);
CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id);
"""

EVENT_COLUMNS = [
    "id", "sender_id", "type_name", "timestamp", "intent_name", "action_name",
    "confidence", "sentiment", "text", "source", "handoff_queue", "handoff_reason",
]
EVENT_DTYPES: dict[str, Any] = {
    "id": "int64", "sender_id": "string", "type_name": "string", "timestamp": "float64",
    "intent_name": "string", "action_name": "string", "confidence": "float64", "sentiment": "float64",
    "text": "string", "source": "string", "handoff_queue": "string", "handoff_reason": "string",
}
CATEGORICAL = ["type_name", "intent_name", "action_name", "source", "handoff_queue", "handoff_reason"]

# Server-side extraction. `data` is Rasa's event JSON: user events carry parse_data (intent
# confidence, an optional `sentiment.score` in [-1, 1]) and text; bot events carry data.custom
# (the handoff action's {"handoff": {"queue", "reason"}}, answers' {"source": "faq"|...}).
_SELECT = """
SELECT id, sender_id, type_name, timestamp, intent_name, action_name,
  CASE WHEN type_name = 'user' THEN
    CASE WHEN jsonb_typeof(d->'parse_data'->'intent'->'confidence') = 'number'
         THEN (d->'parse_data'->'intent'->>'confidence')::float8 END END AS confidence,
  CASE WHEN type_name = 'user' THEN
    CASE WHEN jsonb_typeof(d->'parse_data'->'sentiment'->'score') = 'number'
         THEN (d->'parse_data'->'sentiment'->>'score')::float8 END END AS sentiment,
  CASE WHEN type_name = 'user' THEN left(d->>'text', 500) END AS text,
  CASE WHEN type_name = 'bot' THEN coalesce(d->'data'->'custom'->>'source',
       d->'data'->'custom'->'answer'->>'source') END AS source,
  CASE WHEN type_name = 'bot' THEN d->'data'->'custom'->'handoff'->>'queue' END AS handoff_queue,
  CASE WHEN type_name = 'bot' THEN d->'data'->'custom'->'handoff'->>'reason' END AS handoff_reason
FROM (SELECT id, sender_id, type_name, timestamp, intent_name, action_name,
             CASE WHEN type_name IN ('user', 'bot') THEN data::jsonb END AS d
      FROM events WHERE id >= {lo} AND id < {hi} AND timestamp >= {start} AND timestamp < {end}) e
"""

TICKET_COLUMNS = [
    "id", "conversation_id", "channel", "queue", "priority", "reason", "language", "status", "agent",
    "created_at", "claimed_at", "closed_at", "disposition", "rating",
]


@dataclass
class Period:
    """A half-open time window [start, end) in epoch seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end <= self.start:
            raise BadInput(f"empty or invalid period [{self.start}, {self.end})")

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def previous(self) -> Period:
        """The window of the same length just before this one (for before/after reports)."""
        return Period(self.start - self.seconds, self.start)


@dataclass
class Dataset:
    """What every metric reads: events sorted by (sender, time, id) and tickets of a period."""

    events: pd.DataFrame
    tickets: pd.DataFrame
    period: Period
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)


def parse_since(value: str) -> float:
    """`7d`, `12h`, `30m` or `90s` → seconds; rejects anything else (CLI input)."""
    text = (value or "").strip().lower()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if len(text) < 2 or len(text) > 12 or text[-1] not in units or not text[:-1].isdigit():
        raise BadInput(f"--since must look like 7d, 12h, 30m or 90s, got {value[:40]!r}")
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds <= 0 or seconds > 3660 * 86400:
        raise BadInput(f"--since must be between 1 s and 10 years, got {value!r}")
    return float(seconds)


def empty_events() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: pd.Series([], dtype=object) for c in EVENT_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(EVENT_DTYPES)
    for col in CATEGORICAL:
        frame[col] = frame[col].astype("category")
    return frame


def _connect(url: str) -> Any:
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {redact(url)}") from exc


def _table_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def _copy_frame(conn: Any, query: str) -> pd.DataFrame:
    buf = io.BytesIO()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
        for block in copy:
            buf.write(block)
    buf.seek(0)
    dtypes = {k: v for k, v in EVENT_DTYPES.items()}
    return pd.read_csv(buf, dtype=dtypes, keep_default_na=False, na_values={c: [""] for c in EVENT_COLUMNS})


def _python_rows(conn: Any, lo: int, hi: int, period: Period) -> tuple[pd.DataFrame, int]:
    """Slow path for a chunk with malformed JSON: parse each row, skip the bad ones."""
    cur = conn.execute(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
        "WHERE id >= %s AND id < %s AND timestamp >= %s AND timestamp < %s",
        (lo, hi, period.start, period.end),
    )
    rows, bad = [], 0
    for rid, sender, type_name, ts, intent, action, data in cur:
        try:
            doc = json.loads(data) if data and type_name in ("user", "bot") else {}
            if not isinstance(doc, dict):
                raise ValueError("event data is not an object")
        except ValueError:
            bad += 1
            continue
        rows.append([rid, sender, type_name, ts, intent, action, *_extract(type_name, doc)])
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS) if rows else empty_events()
    return frame.astype(EVENT_DTYPES), bad


def _extract(type_name: str, doc: dict) -> list[Any]:
    def get(obj: Any, *path: str) -> Any:
        for key in path:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    def num(value: Any) -> float:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan

    def txt(value: Any) -> Optional[str]:
        return value if isinstance(value, str) else None

    if type_name == "user":
        text = txt(doc.get("text"))
        return [num(get(doc, "parse_data", "intent", "confidence")), num(get(doc, "parse_data", "sentiment", "score")),
                text[:500] if text else None, None, None, None]
    if type_name == "bot":
        custom = get(doc, "data", "custom")
        source = txt(get(custom, "source")) or txt(get(custom, "answer", "source"))
        handoff = get(custom, "handoff")
        return [np.nan, np.nan, None, source, txt(get(handoff, "queue")), txt(get(handoff, "reason"))]
    return [np.nan, np.nan, None, None, None, None]


def _load_chunk(url: str, lo: int, hi: int, period: Period) -> tuple[pd.DataFrame, int]:
    """One id range on its own connection: fast COPY path, Python path if its JSON is malformed."""
    query = _SELECT.format(lo=int(lo), hi=int(hi), start=repr(float(period.start)), end=repr(float(period.end)))
    with _connect(url) as conn:
        try:
            return _copy_frame(conn, query), 0
        except (psycopg.errors.InvalidTextRepresentation, psycopg.errors.InvalidParameterValue,
                psycopg.errors.UntranslatableCharacter) as exc:
            conn.rollback()
            log.warning("events %d..%d hold invalid JSON (%s); parsing them one by one", lo, hi, exc)
            return _python_rows(conn, lo, hi, period)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"lost PostgreSQL while reading events: {exc}") from exc


def load_events(
    url: str, period: Period, *, chunk_rows: int = 250_000, progress: Optional[Callable[[int], None]] = None,
    workers: int = 2,
) -> tuple[pd.DataFrame, int]:
    """Events in `period`, read in id-range chunks by `workers` connections (PostgreSQL extracts
    the JSON fields in parallel server processes); returns (frame, skipped malformed rows).

    `progress(n)` is called with the number of ids covered after each chunk (for a progress bar).
    """
    if chunk_rows < 1 or workers < 1:
        raise BadInput("chunk_rows and workers must be positive")
    with _connect(url) as conn:
        if not _table_exists(conn, "events"):
            return empty_events(), 0
        lo, hi = conn.execute(
            "SELECT min(id), max(id) FROM events WHERE timestamp >= %s AND timestamp < %s", (period.start, period.end)
        ).fetchone()
    if lo is None:
        return empty_events(), 0
    ranges = [(start, min(start + chunk_rows, hi + 1)) for start in range(lo, hi + 1, chunk_rows)]
    frames, skipped = [], 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_load_chunk, url, a, b, period) for a, b in ranges]
        for (a, b), future in zip(ranges, futures, strict=True):
            frame, bad = future.result()
            frames.append(frame)
            skipped += bad
            if progress is not None:
                progress(b - a)
    frame = mask_texts(pd.concat(frames, ignore_index=True) if frames else empty_events())
    frame = frame.sort_values(["sender_id", "timestamp", "id"], kind="stable", ignore_index=True)
    return _typed(frame), skipped


def mask_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """The `text` column with phone, card and ID numbers masked (only texts with a digit are looked at)."""
    texts = frame["text"]
    digits = texts.str.contains(r"\d", regex=True, na=False).to_numpy(dtype=bool)
    if digits.any():
        frame.loc[digits, "text"] = texts[digits].map(mask_text)
    return frame


def empty_tickets() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in TICKET_COLUMNS})
    return _typed_tickets(frame)


def _typed_tickets(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("created_at", "claimed_at", "closed_at"):
        frame[col] = pd.to_numeric(frame[col]).astype("float64")
    frame["priority"] = pd.to_numeric(frame["priority"]).astype("float64")
    frame["rating"] = pd.to_numeric(frame["rating"]).astype("float64")
    for col in ("id", "conversation_id", "channel", "queue", "reason", "language", "status", "agent", "disposition"):
        frame[col] = frame[col].astype("string")
    return frame


def load_tickets(url: str, period: Period) -> pd.DataFrame:
    """Handoff tickets created, claimed or closed in `period` (timestamps as epoch seconds)."""
    with _connect(url) as conn:
        if not _table_exists(conn, "handoff_tickets"):
            return empty_tickets()
        cols = [f"extract(epoch FROM {c})::float8" if c.endswith("_at") else c for c in TICKET_COLUMNS]
        cur = conn.execute(
            f"SELECT {', '.join(cols)} FROM handoff_tickets WHERE "
            "(created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s)) OR "
            "(closed_at >= to_timestamp(%s) AND closed_at < to_timestamp(%s))",
            (period.start, period.end, period.start, period.end),
        )
        rows = cur.fetchall()
    if not rows:
        return empty_tickets()
    return _typed_tickets(pd.DataFrame(rows, columns=TICKET_COLUMNS))


def load_dataset(url: str, period: Period, *, progress: Optional[Callable[[int], None]] = None,
                 chunk_rows: int = 250_000) -> Dataset:
    events, skipped = load_events(url, period, progress=progress, chunk_rows=chunk_rows)
    notes = [f"skipped {skipped} event rows with malformed JSON"] if skipped else []
    return Dataset(events=events, tickets=load_tickets(url, period), period=period, skipped_rows=skipped, notes=notes)


def count_events(url: str, period: Period) -> int:
    """Upper bound of rows `load_events` will walk (for the progress bar's total)."""
    with _connect(url) as conn:
        if not _table_exists(conn, "events"):
            return 0
        lo, hi = conn.execute(
            "SELECT min(id), max(id) FROM events WHERE timestamp >= %s AND timestamp < %s", (period.start, period.end)
        ).fetchone()
    return 0 if lo is None else int(hi - lo + 1)
