"""Hybrid ranking on the real seed FAQ and case library with real e5 embeddings."""

from __future__ import annotations

import json

import pytest

from knowledge.cases import open_case_store
from knowledge.faq import open_faq_store
from knowledge.service import ANSWER_THRESHOLD
from tests.knowledge.conftest_kb import KB_DIR

EXPECTED = [
    ("卡丢了怎么办", "card-lost-zh"),
    ("信用卡每年要收多少钱", "card-annual-fee-zh"),
    ("开户需要带什么证件", "acct-open-docs-zh"),
    ("退货的快递费谁出", "return-shipping-fee-zh"),
    ("how much is delivery", "ship-fee-en"),
    ("which cards have no foreign transaction fee", "card-foreign-fee-en"),
    ("I forgot my PIN", "card-pin-reset-en"),
    ("can I get a VAT invoice", "invoice-request-en"),
]


@pytest.fixture(scope="module")
def faq(seeded_db_url, kb_embedder):
    store = open_faq_store(seeded_db_url, embedder=kb_embedder)
    yield store
    store.close()


# Ranked first but abstained on by the calibrated decision (issue 18): the e5 cosine cannot tell
# card-pin-reset-en (0.923) from app-login-en (0.919), so P(right) is ~0.3, below the en threshold.
ABSTAINED = {"I forgot my PIN"}


@pytest.mark.parametrize("query,expected", EXPECTED)
def test_paraphrases_find_their_entry_first(faq, query, expected):
    results = faq.search(query, limit=3)
    assert results[0].entry.id == expected, [(r.entry.id, r.confidence) for r in results]
    if query in ABSTAINED:
        assert not results[0].answerable and results[0].abstained_reason
    else:
        assert results[0].answerable and results[0].abstained_reason is None


@pytest.mark.parametrize("query", ["今天天气怎么样", "给我讲个笑话", "who won the football match"])
def test_out_of_domain_questions_get_low_confidence(faq, query):
    results = faq.search(query, limit=3)
    assert not results or (results[0].confidence < ANSWER_THRESHOLD and not results[0].answerable)


def test_most_unanswerable_bench_questions_fall_below_the_answer_threshold(faq):
    rows = [json.loads(line) for line in (KB_DIR / "paraphrases" / "paraphrases.jsonl").read_text().splitlines()]
    confidences = [(faq.search(r["question"], r["language"], 1) or [None])[0] for r in rows if r["faq_id"] is None]
    below = sum(1 for hit in confidences if hit is None or not hit.answerable)
    assert below >= 0.85 * len(confidences)  # was >= 60 % below the raw 0.5 before calibration


def test_fused_ranking_beats_each_single_signal_on_a_slice_of_the_bench_set(faq):
    """Hybrid top-1 must not be worse than any single signal on 60 labelled paraphrases."""
    rows = [json.loads(line) for line in (KB_DIR / "paraphrases" / "paraphrases.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["faq_id"]][:60]

    def top1(signals):
        return sum(1 for r in rows if (faq.search(r["question"], r["language"], 1, signals) or [None])[0]
                   and faq.search(r["question"], r["language"], 1, signals)[0].entry.id == r["faq_id"])

    hybrid = top1(("fts", "trgm", "vector"))
    for single in (("fts",), ("trgm",)):
        assert hybrid > top1(single)
    assert hybrid >= 0.8 * len(rows)


def test_paraphrase_set_is_well_formed():
    from knowledge.content import read_faq

    faq_entries = {e.id: e for e in read_faq(KB_DIR)}
    rows = [json.loads(line) for line in (KB_DIR / "paraphrases" / "paraphrases.jsonl").read_text().splitlines()]
    assert len(rows) >= 200 and sum(1 for r in rows if r["faq_id"] is None) >= 30
    verbatim = {p.lower().rstrip("?？") for e in faq_entries.values() for p in e.phrases}
    for r in rows:
        assert r["faq_id"] is None or r["faq_id"] in faq_entries, r
        assert r["question"].lower().rstrip("?？") not in verbatim, r
        if r["faq_id"]:
            assert faq_entries[r["faq_id"]].language == r["language"], r


def test_similar_cases_rank_the_matching_scenario(seeded_db_url, kb_embedder):
    store = open_case_store(seeded_db_url, embedder=kb_embedder)
    try:
        hits = store.search("我的信用卡被人盗刷了好几千", limit=3)
        assert hits and hits[0].case.category == "cards" and "盗刷" in hits[0].case.question
        en = store.search("the parcel tracking hasn't moved for days", limit=3)
        assert en[0].case.language == "en" and en[0].case.category == "shipping"
        answer = en[0].to_answer()
        assert answer.source == "case" and answer.ref == en[0].case.id and answer.text == en[0].case.resolution
    finally:
        store.close()


def test_seed_content_sizes():
    from knowledge.content import read_cases, read_faq

    faq_entries, cases = read_faq(KB_DIR), read_cases(KB_DIR)
    assert len(faq_entries) >= 150 and {e.language for e in faq_entries} == {"zh", "en"}
    assert len(cases) >= 200 and {c.language for c in cases} == {"zh", "en"}
