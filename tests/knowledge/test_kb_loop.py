"""The update loop on real stores: ticket import (CSV/JSONL), DBSCAN clustering, review → new FAQ version."""

from __future__ import annotations

import argparse
import json

import pytest

from kefu.config import load_settings
from knowledge.cache import AnswerCache
from knowledge.cases import open_case_store
from knowledge.cluster import cluster, strip_greeting
from knowledge.errors import NotFound, ValidationFailed
from knowledge.faq import open_faq_store
from knowledge.review import publish, review, suggest
from knowledge.tickets import TicketStore, parse_file
from tests.knowledge.conftest_kb import KB_DIR


def test_seed_tickets_parse_and_hold_new_topics():
    tickets = parse_file(KB_DIR / "tickets" / "tickets.jsonl")
    assert len(tickets) >= 300 and {t.language for t in tickets} == {"zh", "en"}
    assert sum("数字人民币" in t.question for t in tickets) >= 15


def test_malformed_ticket_files_name_their_rows(tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_text("id,question,language\nT1,卡丢了,zh\nT2,,zh\nT1,重复,zh\nT 4,ok,fr\nT5,\"a\",zh,extra\n",
                   encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        parse_file(bad)
    assert {w for w, _ in info.value.problems} == {f"export.csv row {n}" for n in (3, 4, 5, 6)}
    jsonl = tmp_path / "export.jsonl"
    jsonl.write_text('{"id": "T1", "question": "ok"}\n{not json}\n[1, 2]\n{"id": "T3", "question": 5}\n',
                     encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        parse_file(jsonl)
    assert [w for w, _ in info.value.problems] == ["export.jsonl line 2", "export.jsonl line 3", "export.jsonl line 4"]
    for name, body in (("x.txt", "id,question\n"), ("empty.csv", ""), ("binary.csv", b"\xff\xfe\x00")):
        path = tmp_path / name
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
        with pytest.raises(ValidationFailed):
            parse_file(path)


def test_dbscan_clusters_are_deterministic_and_exclude_noise(kb_embedder):
    texts = ["数字人民币钱包怎么开通", "怎么开通数字人民币", "数字人民币钱包在哪开", "想开数字人民币钱包",
             "个人养老金账户怎么开", "开个人养老金账户", "个人养老金在哪里开户", "怎么开通个人养老金",
             "你们的停车场在哪"]
    vectors = kb_embedder.embed(texts)
    first = cluster(vectors, eps=0.07, min_samples=3)
    assert [sorted(g.members) for g in first] == [sorted(g.members) for g in cluster(vectors, 0.07, 3)]
    groups = sorted(sorted(g.members) for g in first)
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the parking question is noise
    assert strip_greeting("客服你好，请问数字人民币钱包怎么开通") == "数字人民币钱包怎么开通"


@pytest.fixture
def loop_db(seeded_db_url, kb_embedder):
    """The seeded FAQ/cases plus the seed tickets; suggestions and new FAQ entries are removed afterwards."""
    store = TicketStore(seeded_db_url)
    store.import_tickets(parse_file(KB_DIR / "tickets" / "tickets.jsonl"))
    faq = open_faq_store(seeded_db_url, embedder=kb_embedder)
    cases = open_case_store(seeded_db_url, embedder=kb_embedder)
    yield store, faq, cases
    with faq.db.connection() as conn:
        conn.execute("DELETE FROM kb_faq WHERE id LIKE 'sug-%%'")
        conn.execute("DELETE FROM kb_suggestion")
    for s in (store, faq, cases):
        s.close()


def test_cluster_finds_the_new_topics_and_review_publishes_them(loop_db, redis_url):
    store, faq, cases = loop_db
    settings = load_settings({"KEFU_POSTGRES_URL": "postgresql://unused/x"})
    report = suggest(store, settings, faq=faq, cases=cases)
    assert "eps=0.1" in report and "min_samples=4" in report and "metric=cosine" in report
    pending = store.suggestions()
    questions = " ".join(s["question"] for s in pending)
    for topic in ("数字人民币", "养老金", "以旧换新", "Apple Pay", "student"):
        assert topic in questions, report
    assert all(s["size"] >= 4 and s["answer"] for s in pending)

    ecny = next(s for s in pending if "数字人民币" in s["question"])
    assert faq.search("数字人民币钱包怎么开通")[0].entry.id.startswith("sug-") is False
    cache = AnswerCache(redis_url, prefix="kefu:test:loop")
    cache.put("faq", "zh", "数字人民币钱包怎么开通", faq.version(), [])
    version = faq.version()
    fid = publish(ecny, faq, cache, store)
    assert faq.get(fid).status == "published" and faq.version() > version
    assert faq.search("数字人民币钱包怎么开通")[0].entry.id == fid
    assert cache.get("faq", "zh", "数字人民币钱包怎么开通", version) is None  # invalidated
    with pytest.raises(NotFound):
        store.mark(ecny["id"], "approved")  # no longer pending

    args = argparse.Namespace(list=False, approve=None, reject=None, question=None, answer=None)
    answers = iter(["e", "以旧换新怎么参加？", "", "r", "q"])
    rest = [s for s in store.suggestions() if s["id"] != ecny["id"]]
    review(store, settings, cache, args, ask=lambda _prompt: next(answers), faq=faq)
    statuses = {s["id"]: s["status"] for s in store.suggestions(None)}
    assert statuses[rest[0]["id"]] == "approved" and statuses[rest[1]["id"]] == "rejected"
    edited = faq.get(f"sug-{rest[0]['id']}-{rest[0]['language']}")
    assert edited.question == "以旧换新怎么参加？" and edited.answer == rest[0]["answer"]


def test_review_rejects_an_invalid_edit(loop_db):
    store, faq, _ = loop_db
    [sid] = store.replace_pending([{"language": "zh", "question": "问题", "alternatives": [], "answer": "答",
                                    "answer_source": "test", "ticket_ids": ["T1"], "size": 4, "cohesion": 0.9,
                                    "params": {}}])
    suggestion = store.suggestions()[0]
    with pytest.raises(ValidationFailed):
        publish(suggestion, faq, AnswerCache(None), store, answer="答" * 5000)
    assert store.suggestions()[0]["status"] == "pending" and sid == suggestion["id"]
    assert json.dumps(suggestion, default=str)
