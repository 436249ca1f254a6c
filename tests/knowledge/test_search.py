"""Search helpers: lexicon segmentation (as the NLU tokenizer does), query preparation, fusion."""

from __future__ import annotations

import jieba
import pytest

from kefu.lexicon import JIEBA_DIR, tokenizer_for
from knowledge.errors import BadInput
from knowledge.search import (
    FUSION,
    MAX_QUERY_CHARS,
    PREVIOUS_FUSION,
    SECOND,
    Fusion,
    best_two_per_ref,
    bounded_limit,
    fts_terms,
    fuse,
    prepare_query,
    rank_and_calibrate,
    segment,
)


def lexicon_terms() -> set[str]:
    terms: set[str] = set()
    for path in JIEBA_DIR.glob("*.txt"):
        terms.update(line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return terms


@pytest.mark.parametrize("term", ["全币种旅行信用卡", "白金信用卡", "客服商城联名卡", "失卡保障"])
def test_a_product_name_from_the_lexicon_stays_one_token(term: str) -> None:
    assert term in lexicon_terms()  # generated from the graph (data/lexicons/jieba/kefu_generated.txt)
    plain = jieba.Tokenizer().lcut(f"我想办{term}年费多少", HMM=False)
    assert term not in plain  # jieba's own dictionary would cut it apart
    words = segment(f"我想办{term}年费多少")
    assert term in words and "年费" in words
    assert term in fts_terms(f"{term}年费多少").split(" or ")


def test_search_and_nlu_segment_alike() -> None:
    nlu = tokenizer_for(JIEBA_DIR)
    for text in ("白金卡年费多少", "我的客服银行借记卡丢了要补卡", "全币种旅行信用卡境外刷卡手续费", "我要退货"):
        assert segment(text) == [w for w in nlu.lcut(text, HMM=False) if w.strip()]


def test_hostile_or_empty_text() -> None:
    assert segment("") == segment("   ") == segment("\x00\x01，。") == []
    assert segment("'; DROP TABLE kb_faq; --") == ["drop", "table", "kb_faq"]
    assert segment("年费" * 300) == ["年费"] * 300


@pytest.mark.parametrize("query", [None, 42, b"bytes", ["list"], {"q": 1}])
def test_malformed_queries_are_refused(query) -> None:
    with pytest.raises(BadInput):
        prepare_query(query, "zh")


def test_queries_are_cleaned_bounded_and_get_a_language() -> None:
    assert prepare_query("  白金卡\x00年费  ", None) == ("白金卡年费", "zh")
    assert prepare_query("annual fee?", None)[1] == "en"
    assert prepare_query("annual fee?", "zh")[1] == "zh"  # the caller's language wins when it is zh/en
    assert prepare_query("年费", "fr")[1] == "zh"
    assert prepare_query("", "en") == ("", "en")
    assert len(prepare_query("年" * 10_000, None)[0]) == MAX_QUERY_CHARS
    assert [bounded_limit(n) for n in (-5, 0, 3, 10_000)] == [1, 1, 3, 50]


RANKINGS = {
    "vector": [("a", 0.90), ("b", 0.89), ("c", 0.70)],
    SECOND: [("a", 0.60), ("b", 0.88), ("c", 0.69)],
    "fts": [("c", 0.9), ("a", 0.2)],
    "trgm": [("c", 0.5)],
}


def test_score_fusion_weighs_raw_scores_and_the_second_phrase() -> None:
    vector_only = fuse(RANKINGS, Fusion("score", (("vector", 1.0),)))
    assert [h.ref for h in vector_only] == ["a", "b", "c"]
    with_second = fuse(RANKINGS, Fusion("score", (("vector", 1.0),), second=0.1))
    assert [h.ref for h in with_second] == ["b", "a", "c"]  # b's second phrase matches too
    assert with_second[0].fused == pytest.approx(0.89 + 0.1 * 0.88)
    lexical = fuse(RANKINGS, Fusion("score", (("vector", 1.0), ("fts", 0.5)), second=0.1))
    assert lexical[0].ref == "c"  # 0.70 + 0.45 + 0.069
    assert set(lexical[0].scores) == {"vector", "fts", "trgm"}  # the second phrase is no signal
    assert lexical[0].ranks == {"vector": 3, "fts": 1, "trgm": 1}


def test_rrf_fusion_uses_ranks_only() -> None:
    hits = fuse(RANKINGS, Fusion("rrf", (("vector", 1.0), ("fts", 1.0)), k=1))
    assert hits[0].ref == "a" and hits[0].fused == pytest.approx(1 / 2 + 1 / 3)
    assert PREVIOUS_FUSION.method == "rrf" and FUSION.method == "score"


def test_confidences_follow_the_fused_order() -> None:
    hits = rank_and_calibrate(RANKINGS, 3)
    assert [h.ref for h in hits] == [h.ref for h in fuse(RANKINGS)]
    assert all(0.0 <= h.confidence <= 1.0 for h in hits)
    assert [h.confidence for h in hits] == sorted((h.confidence for h in hits), reverse=True)
    assert rank_and_calibrate({}, 3) == []


def test_best_two_per_ref() -> None:
    rows = [("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", 0.6), ("b", 0.5), ("d", 0.4)]
    best, second = best_two_per_ref(rows, 3)
    assert best == [("a", 0.9), ("b", 0.8), ("c", 0.6)]
    assert second == [("a", 0.7), ("b", 0.5), ("c", 0.4)]  # c's second phrase is not in the rows: the floor
    assert best_two_per_ref([], 3) == ([], [])
