"""`kefu jobs`: recent background-job runs (status, attempts, duration); `kefu jobs run NAME` queues one."""

from __future__ import annotations

import argparse
import time

import redis

from kefu.config import Settings
from kefu.errors import BadInput, StoreUnavailable
from ops.jobs import runs
from ops.jobs.broker import broker_url

TASKS = ("report", "warm_cache", "ingest_knowledge", "iterate", "cluster_tickets")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("jobs", help="list recent background jobs, or queue one")
    p.add_argument("action", nargs="?", default="list", choices=("list", "run"))
    p.add_argument("task", nargs="?", help=f"with `run`: one of {', '.join(TASKS)}")
    p.add_argument("--limit", type=int, default=20, help="how many runs to list (1-1000, default 20)")


def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def main(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 1000:
        raise BadInput("--limit must be between 1 and 1000")
    url = broker_url(settings)
    if args.action == "run":
        if args.task not in TASKS:
            raise BadInput(f"unknown task {str(args.task)[:40]!r}; one of {', '.join(TASKS)}")
        from ops.celery_app import app  # lazy: Celery (0.1 s) only to queue a job, off `kefu --help`

        try:
            result = app.send_task(f"kefu.{args.task}")
        except Exception as exc:  # kombu raises OperationalError and friends
            raise StoreUnavailable(f"cannot queue the job: {exc}") from exc
        print(f"queued kefu.{args.task} as {result.id}")
        return 0
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        found = runs.recent(client, args.limit)
    except redis.RedisError as exc:
        raise StoreUnavailable(f"cannot read job runs from Redis: {exc}") from exc
    finally:
        client.close()
    print(f"{'started (UTC)':19}  {'task':22} {'status':8} {'tries':>5} {'duration':>9}  id")
    for run in found:
        dur = f"{run.duration:.2f}s" if run.duration is not None else "-"
        print(f"{_fmt_time(run.started):19}  {run.name:22} {run.status:8} {run.attempts:>5} {dur:>9}  {run.id}")
    if not found:
        print("(no runs yet)")
    return 0
