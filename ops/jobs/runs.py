"""Run records of every task (`kefu jobs`): name, status, attempts, start, duration, error.

Written by Celery signal handlers in the worker into the broker's Redis (hash per task id plus
a time-ordered index), so a redelivered task shows as one run with two attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

PREFIX = "kefu:jobs"
KEEP = 1000
TTL_S = 30 * 86400


@dataclass
class Run:
    id: str
    name: str
    status: str
    attempts: int
    started: Optional[float]
    finished: Optional[float]
    error: str = ""

    @property
    def duration(self) -> Optional[float]:
        return None if self.started is None or self.finished is None else self.finished - self.started


def _key(task_id: str) -> str:
    return f"{PREFIX}:run:{task_id}"


def record_start(client: Any, task_id: str, name: str, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    pipe = client.pipeline()
    pipe.hset(_key(task_id), mapping={"name": name, "status": "STARTED", "started": now, "finished": "", "error": ""})
    pipe.hincrby(_key(task_id), "attempts", 1)
    pipe.expire(_key(task_id), TTL_S)
    pipe.zadd(f"{PREFIX}:index", {task_id: now}, nx=True)
    pipe.zremrangebyrank(f"{PREFIX}:index", 0, -KEEP - 1)
    pipe.execute()


def record_end(client: Any, task_id: str, status: str, error: str = "", now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    client.hset(_key(task_id), mapping={"status": status, "finished": now, "error": error[:500]})


def _decode(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def get(client: Any, task_id: str) -> Optional[Run]:
    h = {_decode(k): _decode(v) for k, v in client.hgetall(_key(task_id)).items()}
    if not h:
        return None
    return Run(task_id, h.get("name", "?"), h.get("status", "?"), int(h.get("attempts") or 0),
               float(h["started"]) if h.get("started") else None,
               float(h["finished"]) if h.get("finished") else None, h.get("error", ""))


def recent(client: Any, limit: int = 20) -> list[Run]:
    """Most recent runs first."""
    ids = client.zrevrange(f"{PREFIX}:index", 0, max(limit, 1) - 1)
    found = (get(client, _decode(raw)) for raw in ids)
    return [run for run in found if run is not None]
