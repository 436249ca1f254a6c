"""Kefu's Celery tasks. Each is idempotent (same inputs → same end state, so an acks-late
redelivery is harmless) and retried with exponential backoff while a store is unavailable."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import redis
from celery import signals

from analytics.database import tracker_database
from analytics.loader import Period, parse_since
from analytics.report import build_report
from kefu.config import PROJECT_ROOT, load_settings
from kefu.errors import ConfigError, StoreUnavailable
from kefu.lexicon import write_lexicon
from knowledge.cases import open_case_store
from knowledge.content import read_cases, read_faq
from knowledge.faq import open_faq_store
from knowledge.review import suggest
from knowledge.service import KnowledgeService
from knowledge.tickets import TicketStore
from ops.celery_app import app
from ops.iterate.loop import run_from_settings
from ops.jobs import runs
from ops.jobs.questions import top_questions

log = logging.getLogger(__name__)

RETRY = {"autoretry_for": (StoreUnavailable,), "retry_backoff": 2, "retry_backoff_max": 300, "max_retries": 6,
         "retry_jitter": True}
_client: Any = None


def records_client() -> Any:
    """Redis client for run records (the broker's server), created on first use in the worker."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=5, socket_connect_timeout=5)
    return _client


def _safe(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run records must never fail a task: a Redis hiccup is logged and ignored."""
    try:
        fn(records_client(), *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - redis errors and bad data alike
        log.warning("could not write the job run record: %s", exc)


@signals.task_prerun.connect
def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    _safe(runs.record_start, task_id, getattr(task, "name", "?"))


@signals.task_postrun.connect
def _on_postrun(task_id: str = "", state: Optional[str] = None, retval: Any = None, **_: Any) -> None:
    if state in ("SUCCESS", "FAILURE"):
        _safe(runs.record_end, task_id, state, "" if state == "SUCCESS" else repr(retval))


@signals.task_retry.connect
def _on_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    _safe(runs.record_end, getattr(request, "id", ""), "RETRY", str(reason))


def _settings() -> Any:
    return load_settings()


@app.task(name="kefu.report", **RETRY)
def report(since: str = "7d", until: Optional[float] = None, out: Optional[str] = None) -> dict[str, Any]:
    """Write the service report of the period ending at `until` (default: now, rounded to the hour)."""
    settings = _settings()
    end = float(until) if until is not None else time.time() // 3600 * 3600
    period = Period(end - parse_since(since), end)
    target = Path(out) if out else settings.var_dir / "reports" / time.strftime("%Y%m%dT%H%MZ", time.gmtime(end))
    with tracker_database(settings) as url:
        result = build_report(url, period, target)
    return {"out": str(result.out_dir), "events": result.events, "seconds": round(result.seconds, 2)}


@app.task(name="kefu.warm_cache", **RETRY)
def warm_cache(top: int = 50, since: str = "7d", until: Optional[float] = None) -> dict[str, Any]:
    """Answer the most frequent customer questions of the period ending at `until` (default now) once,
    filling the answer cache."""
    settings = _settings()
    end = float(until) if until is not None else time.time()
    with tracker_database(settings) as url:
        questions = top_questions(url, Period(end - parse_since(since), end), top)
    service = KnowledgeService(settings=settings)
    try:
        for text in questions:
            service.faq_answers(text)
    finally:
        service.close()
    return {"warmed": len(questions)}


@app.task(name="kefu.ingest_knowledge", **RETRY)
def ingest_knowledge(root: Optional[str] = None) -> dict[str, Any]:
    """(Re-)load FAQ and cases from `data/knowledge` (unchanged entries are skipped by the stores,
    changed ones re-embedded), drop cached answers, regenerate the jieba lexicon."""
    settings = _settings()
    base = Path(root) if root else PROJECT_ROOT / "data" / "knowledge"
    faq = open_faq_store(settings.faq_url)
    cases = open_case_store(settings.cases_url)
    try:
        faq_counts = faq.upsert(read_faq(base), note="job")
        case_counts = cases.upsert(read_cases(base))
    finally:
        faq.close()
        cases.close()
    KnowledgeService(settings=settings).knowledge_changed()
    lexicon = write_lexicon()
    return {"faq": faq_counts, "cases": case_counts, "lexicon_terms": lexicon.terms}


@app.task(name="kefu.iterate", **RETRY)
def iterate(registry: Optional[str] = None) -> dict[str, Any]:
    """The monthly model iteration (collect → propose → train candidate → evaluate → promote/refuse)."""
    return run_from_settings(_settings(), registry)


@app.task(name="kefu.cluster_tickets", **RETRY)
def cluster_tickets(eps: Optional[float] = None, min_samples: Optional[int] = None,
                    answered_above: Optional[float] = None) -> dict[str, Any]:
    """`kefu kb cluster` as a job: group the imported tickets the FAQ cannot answer into pending FAQ
    suggestions. Idempotent: each run replaces the pending suggestions (reviewed ones are kept)."""
    settings = _settings()
    if not settings.faq_url:
        raise ConfigError("no knowledge-base database: set KEFU_POSTGRES_URL or KEFU_FAQ_URL")
    store = TicketStore(settings.faq_url)
    try:
        report = suggest(store, settings, eps=eps, min_samples=min_samples, answered_above=answered_above)
        pending = store.suggestions("pending")
    finally:
        store.close()
    return {"pending": len(pending), "tickets": sum(s["size"] for s in pending), "report": report[:4000]}
