"""Answer cache on a real Redis: keys by normalised query + knowledge version, invalidation, outages."""

from __future__ import annotations

import uuid

import pytest

from knowledge.answer import Answer
from knowledge.cache import AnswerCache, cache_key_text
from knowledge.faq import FaqEntry, open_faq_store
from knowledge.service import KnowledgeService
from tests.servers import free_port

A = Answer(text="请立即挂失。", source="faq", confidence=0.9, ref="t-lost", language="zh", scores={"vector": 0.95})


@pytest.fixture
def cache(redis_url):
    c = AnswerCache(redis_url, prefix=f"kefu:test:{uuid.uuid4().hex[:8]}")
    yield c
    c.invalidate()


def test_normalised_spellings_share_a_key():
    assert cache_key_text("  How much is SHIPPING?  ") == cache_key_text("how much is shipping")
    assert cache_key_text("卡丢了怎么办？") == cache_key_text("卡丢了怎么办")
    assert cache_key_text("ＡＢＣ") == "abc"  # full-width letters


def test_round_trip_hit_and_miss_counters(cache):
    assert cache.get("faq", "zh", "卡丢了", 1) is None
    cache.put("faq", "zh", "卡丢了", 1, [A])
    assert cache.get("faq", "zh", "卡丢了？", 1) == [A]
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (1, 1, 0)
    assert stats["shared_hits"] == 1 and stats["hit_rate"] == 0.5


def test_a_new_knowledge_version_misses_and_invalidate_drops_keys(cache):
    cache.put("faq", "zh", "卡丢了", 1, [A])
    assert cache.get("faq", "zh", "卡丢了", 2) is None
    assert cache.invalidate() == 1
    assert cache.get("faq", "zh", "卡丢了", 1) is None


def test_redis_outage_never_fails_and_is_counted():
    dead = AnswerCache(f"redis://127.0.0.1:{free_port()}/0")
    assert dead.get("faq", "zh", "卡丢了", 1) is None
    dead.put("faq", "zh", "卡丢了", 1, [A])
    assert dead.invalidate() == 0
    assert dead.stats()["errors"] >= 1


def test_disabled_cache_is_a_quiet_miss():
    off = AnswerCache(None)
    assert off.get("faq", "en", "q", 1) is None and off.stats()["errors"] == 0


def test_service_caches_and_an_update_invalidates(fresh_db_url, kb_embedder, cache):
    store = open_faq_store(fresh_db_url, embedder=kb_embedder)
    base = FaqEntry("t-lost-zh", "zh", "银行卡丢了怎么办？", "请立即挂失。")
    store.upsert([base])
    service = KnowledgeService(faq=store, cache=cache)
    try:
        first = service.faq_answers("银行卡丢了怎么办")
        second = service.faq_answers("银行卡丢了怎么办？")
        assert first == second and cache.hits == 1 and cache.misses == 1
        store.upsert([FaqEntry("t-lost-zh", "zh", "银行卡丢了怎么办？", "请在手机银行挂失。")])
        service.knowledge_changed()
        assert service.faq_answers("银行卡丢了怎么办")[0].text == "请在手机银行挂失。"
    finally:
        store.close()


def test_service_answers_from_the_store_while_redis_is_down(fresh_db_url, kb_embedder):
    store = open_faq_store(fresh_db_url, embedder=kb_embedder)
    store.upsert([FaqEntry("t-lost-zh", "zh", "银行卡丢了怎么办？", "请立即挂失。")])
    service = KnowledgeService(faq=store, cache=AnswerCache(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        assert service.faq_answers("银行卡丢了怎么办")[0].ref == "t-lost-zh"
        assert service.cache.stats()["errors"] >= 1
    finally:
        store.close()
