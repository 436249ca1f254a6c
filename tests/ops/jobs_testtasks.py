"""Tasks only the job tests queue (the worker imports this module with `-I`)."""

from __future__ import annotations

import os
import time

import redis

from kefu.errors import StoreUnavailable
from ops.celery_app import app


def _client() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url)


@app.task(name="tests.apply_once")
def apply_once(key: str, sleep: float) -> int:
    """Idempotent effect keyed by `key` (HSETNX), then slow work the test kills the worker in."""
    r = _client()
    r.incr(f"test:{key}:attempts")
    r.hsetnx(f"test:{key}:effects", key, os.getpid())  # applied once however often it runs
    r.rpush(f"test:{key}:pids", os.getpid())
    time.sleep(sleep)
    return int(r.hlen(f"test:{key}:effects"))


@app.task(name="tests.flaky", autoretry_for=(StoreUnavailable,), retry_backoff=False, max_retries=5,
          default_retry_delay=0.2)
def flaky(key: str, failures: int) -> int:
    """Raises StoreUnavailable `failures` times, then succeeds (exercises autoretry)."""
    tries = _client().incr(f"test:{key}:tries")
    if tries <= failures:
        raise StoreUnavailable("store down (test)")
    return tries
