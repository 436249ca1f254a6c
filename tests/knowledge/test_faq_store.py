"""FAQ store on real PostgreSQL: schema, idempotent upserts, version history, hybrid ranking, hostile input."""

from __future__ import annotations

import pytest

from kefu.dburl import DatabaseURL
from knowledge.errors import BadInput, NotFound, ValidationFailed
from knowledge.faq import FaqEntry, open_faq_store, parse_entries
from knowledge.urls import StoreURL

INJECTIONS = [
    "'; DROP TABLE kb_faq; --",
    "\" OR 1=1 --",
    "x' UNION SELECT id, answer FROM kb_faq --",
    "%' OR '1'='1",
    "!!(&|) <-> :* \\",
    "$$; DELETE FROM kb_meta; $$",
]


def entry(fid: str, question: str, answer: str = "answer", language: str = "zh", **kw) -> FaqEntry:
    return FaqEntry(fid, language, question, answer, **kw)


SMALL = [
    entry("t-annual-fee-zh", "信用卡的年费是多少？", "普卡年费100元。", alternatives=("信用卡要交年费吗",)),
    entry("t-lost-card-zh", "银行卡丢了怎么办？", "请立即挂失。", alternatives=("卡丢了怎么挂失",)),
    entry("t-ship-fee-en", "How much is shipping?", "Free over 99 yuan.", language="en"),
    entry("t-refund-en", "How long does a refund take?", "1-3 working days.", language="en"),
]


@pytest.fixture
def store(fresh_db_url, kb_embedder):
    s = open_faq_store(fresh_db_url, embedder=kb_embedder)
    yield s
    s.close()


def test_url_repr_hides_password():
    url = StoreURL.parse("postgresql://kefu:s3cret@db.example:5432/kefu")
    assert "s3cret" not in repr(url) and "s3cret" not in str(url)


def test_store_urls_are_database_urls_shown_redacted():
    configured = DatabaseURL("postgresql://kefu:s3cret@db.example:5432/kefu?kb_vector=array")
    url = StoreURL.parse(configured)
    assert isinstance(url, DatabaseURL) and url == configured and url.raw == str(configured)
    assert str(url) == configured.redacted and url.options == {"kb_vector": "array"}
    with pytest.raises(BadInput, match="bad port in store URL"):
        StoreURL.parse("falkordb://h:99999/kefu")
    with pytest.raises(BadInput, match="not a store URL"):
        StoreURL.parse("db.example:5432")


def test_schema_is_created_and_upserts_are_idempotent(store):
    store.ensure_schema()
    store.ensure_schema()  # twice is fine
    first = store.upsert(SMALL)
    assert first["inserted"] == 4 and first["unchanged"] == 0
    again = store.upsert(SMALL)
    assert again == {"inserted": 0, "updated": 0, "unchanged": 4, "reindexed": 0}
    assert [e.id for e in store.export()] == sorted(e.id for e in SMALL)
    assert store.get("t-lost-card-zh").version == 1


def test_changed_entry_gets_a_new_version_and_history(store):
    store.upsert(SMALL)
    version_before = store.version()
    changed = entry("t-lost-card-zh", "银行卡丢了怎么办？", "请立即在手机银行挂失，或拨打热线。",
                    alternatives=("卡丢了怎么挂失",))
    counts = store.upsert([changed], note="edit")
    assert counts["updated"] == 1
    assert store.get("t-lost-card-zh").version == 2
    assert store.get("t-lost-card-zh").answer.startswith("请立即在手机银行")
    history = store.history("t-lost-card-zh")
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["answer"] == "请立即挂失。" and history[1]["note"] == "edit"
    assert store.version() > version_before  # cache keys move on


def test_retired_and_draft_entries_are_not_searchable(store):
    store.upsert(SMALL)
    assert store.search("银行卡丢了怎么办")[0].entry.id == "t-lost-card-zh"
    retired = entry("t-lost-card-zh", "银行卡丢了怎么办？", "请立即挂失。", alternatives=("卡丢了怎么挂失",),
                    status="retired")
    store.upsert([retired])
    assert "t-lost-card-zh" not in [r.entry.id for r in store.search("银行卡丢了怎么办")]
    assert store.get("t-lost-card-zh").status == "retired"


def test_search_filters_by_language_and_reports_every_signal(store):
    store.upsert(SMALL)
    [top, *_] = store.search("how much does shipping cost", limit=3)
    assert top.entry.id == "t-ship-fee-en" and top.entry.language == "en"
    assert set(top.scores) == {"fts", "trgm", "vector"}
    assert 0.0 <= top.confidence <= 1.0
    assert all(r.entry.language == "zh" for r in store.search("年费多少"))


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_injection_strings_are_only_ever_parameters(store, hostile):
    store.upsert(SMALL)
    store.search(hostile)  # may or may not match; must not error or execute anything
    with pytest.raises(NotFound):
        store.get(hostile)
    assert len(store.export()) == 4 and store.version() >= 1


def test_injection_strings_as_content_are_stored_verbatim(store):
    evil = entry("t-evil-en", "'; DROP TABLE kb_faq; --", "$$ DELETE FROM kb_meta $$", language="en")
    store.upsert([*SMALL, evil])
    assert store.get("t-evil-en").question == "'; DROP TABLE kb_faq; --"
    assert store.search("DROP TABLE kb_faq")[0].entry.id == "t-evil-en"
    assert len(store.export()) == 5


def test_empty_oversized_and_malformed_queries(store):
    store.upsert(SMALL)
    assert store.search("") == [] and store.search("   \x00\x01 ") == []
    huge = "退款" * 50_000  # 100,000 characters: truncated, answered, no error
    assert store.search(huge)[0].entry.id
    with pytest.raises(BadInput):
        store.search(None)  # type: ignore[arg-type]
    assert store.search("🙂🙂🙂") is not None


def test_validation_reports_row_numbers_and_rejects_everything():
    rows = [
        ("faq.yml row 1", {"id": "ok-1", "language": "zh", "question": "问", "answer": "答"}),
        ("faq.yml row 2", {"id": "BAD ID", "language": "zh", "question": "问", "answer": "答"}),
        ("faq.yml row 3", {"id": "ok-3", "language": "fr", "question": "", "answer": "答"}),
        ("faq.yml row 4", {"id": "ok-4", "language": "en", "question": "q" * 301, "answer": "a" * 4001}),
        ("faq.yml row 5", {"id": "ok-1", "language": "zh", "question": "问", "answer": "答"}),
        ("faq.yml row 6", ["not", "a", "mapping"]),
        ("faq.yml row 7", {"id": "ok-7", "language": "zh", "question": "问", "answer": "答", "sql": "x"}),
        ("faq.yml row 8", {"id": "ok-8", "language": "zh", "question": "问", "answer": "答", "status": "gone"}),
    ]
    with pytest.raises(ValidationFailed) as info:
        parse_entries(rows)
    where = {w for w, _ in info.value.problems}
    assert where == {f"faq.yml row {n}" for n in (2, 3, 4, 5, 6, 7, 8)}
    assert any("duplicate id 'ok-1'" in what for _, what in info.value.problems)


def test_unsupported_scheme_is_a_clear_error():
    with pytest.raises(BadInput, match="unsupported scheme"):
        open_faq_store("mysql://localhost/kefu")


def test_in_process_cosine_fallback_without_pgvector(fresh_db_url, kb_embedder, caplog):
    """`kb_vector=array` stores REAL[] like a server without pgvector (the system PostgreSQL 15 here)."""
    sep = "&" if "?" in fresh_db_url else "?"
    s = open_faq_store(f"{fresh_db_url}{sep}kb_vector=array", embedder=kb_embedder)
    try:
        with caplog.at_level("WARNING"):
            s.upsert(SMALL)
        assert s.db.has_vector is False
        assert "no pgvector" in caplog.text
        [top, *_] = s.search("卡丢了怎么办")
        assert top.entry.id == "t-lost-card-zh" and top.scores["vector"] > 0.8
        with s.db.connection() as conn:
            kind = conn.execute("SELECT pg_typeof(embedding)::text FROM kb_faq_phrase LIMIT 1").fetchone()[0]
        assert kind == "real[]"
    finally:
        s.close()


def test_stale_full_text_vectors_are_resegmented_when_the_lexicon_changes(store):
    """Phrases written under another lexicon get new words on the next load (same text, same answers)."""
    store.upsert(SMALL)
    with store.db.transaction() as conn:  # as if written by an older dictionary: one word per phrase
        conn.execute("UPDATE kb_faq_phrase SET tsv = to_tsvector('simple', 'stale')")
        conn.execute("UPDATE kb_meta SET value = 'older-lexicon' WHERE key = 'kb_faq_phrase_segmenter'")
    assert not store.search("挂失", signals=("fts",))
    version = store.version()
    counts = store.upsert(SMALL)
    assert counts["unchanged"] == 4 and counts["resegmented"] == 6 and counts["version"] == version + 1
    assert store.search("挂失", signals=("fts",))[0].entry.id == "t-lost-card-zh"
    assert "resegmented" not in store.upsert(SMALL)  # up to date now
