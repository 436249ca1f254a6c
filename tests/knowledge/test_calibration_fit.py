"""Fitting the FAQ answer calibrator (knowledge/calibration_fit.py) and its decision through the
real FAQ store (seed FAQ in a real PostgreSQL database, real e5 embeddings)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from knowledge.calibration_fit import (
    Example,
    build_examples,
    choose_threshold,
    example_specs,
    fit,
    oof_probabilities,
    pair_scores,
    rates,
)
from knowledge.calibrator import feature_row
from knowledge.faq import FaqEntry, open_faq_store
from knowledge.search import prepare_query, rank_and_calibrate
from knowledge.service import KnowledgeService
from tests.knowledge.conftest_kb import KB_DIR


def entry(fid: str, *phrases: str, status: str = "published") -> FaqEntry:
    return FaqEntry(fid, "zh", phrases[0], "answer", tuple(phrases[1:]), status=status)


def test_example_specs_leave_one_phrase_out_and_hold_out_whole_entries():
    entries = [entry("a", "q1", "q2"), entry("b", "only"), entry("c", "x", "y", status="draft")]
    paraphrases = [{"id": "p1", "question": "pa", "language": "zh", "faq_id": "a"},
                   {"id": "p2", "question": "none", "language": "zh", "faq_id": None}]
    specs = example_specs(entries, paraphrases)
    loo = [s for s in specs if s["kind"] == "leave-one-out"]
    assert [(s["text"], s["excluded"]) for s in loo] == [("q1", {("a", "q1")}), ("q2", {("a", "q2")})]
    held = {s["text"]: s["excluded"] for s in specs if s["kind"] == "held-out entry" and s["group"] == "a"}
    assert held == {t: {("a", "q1"), ("a", "q2")} for t in ("q1", "q2", "pa")}
    assert [s["text"] for s in specs if s["kind"] == "paraphrase"] == ["pa"]
    assert [(s["group"], s["label"]) for s in specs if s["kind"] == "no entry"] == [("none:p2", None)]
    assert not any(s["group"] == "c" for s in specs)  # drafts are not searchable: no examples
    assert not any(s["kind"] == "leave-one-out" and s["group"] == "b" for s in specs)  # nothing left


def example(answerable: bool, right: bool, vector: float, group: str = "g") -> Example:
    return Example("zh", group, "paraphrase", answerable, right, [vector, 0.0, 0.0, 0.0, 1.0], 0.0)


def test_rates_and_threshold_known_answer():
    examples = [example(True, True, 0), example(True, True, 0), example(True, False, 0), example(False, False, 0)]
    probs = np.array([0.9, 0.7, 0.6, 0.5])
    assert rates(probs, examples, 0.55) == {"right": 2 / 3, "wrong": 1 / 3, "none_answered": 0.0}
    # 0.5 answers the unanswerable one, 0.6 a wrong one; 0.7 is the lowest that does neither
    assert choose_threshold(probs, examples) == 0.7
    assert choose_threshold(np.array([0.9, 0.9, 0.9, 0.9]), examples) == 1.0  # nothing separates them


def test_fitted_probabilities_rise_with_the_cosine_and_oof_keeps_groups_apart():
    rng = np.random.default_rng(3)
    examples = []
    for g in range(40):
        for _ in range(5):
            right = bool(rng.random() < 0.5)
            examples.append(example(True, right, float(rng.normal(0.95 if right else 0.90, 0.01)), f"e{g}"))
    calibrator, report = fit(examples + [Example("en", e.group, e.kind, e.answerable, e.right, e.row, 0)
                                         for e in examples])
    probs = [calibrator.models["zh"].probability([v, 0, 0, 0, 1]) for v in (0.85, 0.9, 0.93, 0.96, 1.0)]
    assert probs == sorted(probs) and probs[0] < 0.2 < 0.8 < probs[-1]
    assert report["zh"]["oof_wrong"] <= 0.05 and 0 < report["zh"]["threshold"] < 1
    # a group's own examples never train the model that scores them: a group alone in the data
    # with an inverted label scores as the other groups taught, not as itself
    odd = [example(True, True, 0.90, "odd"), example(True, True, 0.90, "odd")]
    oof = oof_probabilities(examples + odd)
    assert oof[-1] < 0.5 and oof[-2] < 0.5


@pytest.fixture(scope="module")
def faq(seeded_db_url, kb_embedder):
    store = open_faq_store(seeded_db_url, embedder=kb_embedder)
    yield store
    store.close()


def test_the_fit_ranks_exactly_like_the_store(faq):
    """With nothing masked, the fit's emulated rankings give the store's own top hit and features."""
    queries = ["卡丢了怎么办", "how much is delivery", "How do I order a checkbook?", "退货的快递费谁出"]
    prepared = [prepare_query(q, None) for q in queries]
    for key, scores in zip(prepared, pair_scores(faq, prepared), strict=True):
        emulated = rank_and_calibrate(scores.rankings(set()), 3)
        real = [h for h, _ in faq.hybrid(key[0], key[1], 3)]
        assert emulated[0].ref == real[0].ref
        assert feature_row(emulated[0], emulated[1]) == pytest.approx(feature_row(real[0], real[1]), abs=1e-4)


def test_build_examples_on_the_seed_labels_leave_one_out_and_held_out(faq):
    entries = [e for e in faq.export() if e.id in ("card-lost-zh", "ship-fee-en")]
    examples = build_examples(faq, entries, [])
    held = [e for e in examples if e.kind == "held-out entry"]
    assert held and not any(e.right or e.answerable for e in held)
    loo = [e for e in examples if e.kind == "leave-one-out"]
    assert loo and all(e.answerable for e in loo) and sum(e.right for e in loo) >= len(loo) // 2


@pytest.mark.parametrize(("query", "language"), [("How do I order a checkbook?", "en"),
                                                 ("你们有保险箱出租吗", "zh"), ("今天天气怎么样", "zh")])
def test_an_unanswerable_question_is_not_answered(faq, query, language):
    results = faq.search(query, language, limit=3)
    assert results and not results[0].answerable  # something ranks first, but the decision abstains
    assert results[0].abstained_reason.startswith(f"calibrated ({language})")
    answer = KnowledgeService(faq=faq).faq_answers(query, language)[0]
    assert answer.answerable is False and not answer.clears(0.0)


@pytest.mark.parametrize(("query", "expected"), [("开户需要带什么证件", "acct-open-docs-zh"),
                                                 ("can I get a VAT invoice", "invoice-request-en")])
def test_an_answerable_question_is_answered(faq, query, expected):
    top = faq.search(query, limit=1)[0]
    assert top.entry.id == expected and top.answerable and top.abstained_reason is None
    assert top.confidence >= faq.calibrator.threshold(top.entry.language)
    assert KnowledgeService(faq=faq).faq_answers(query)[0].clears(1.0)  # its own decision, not a threshold


def test_a_corrupt_calibrator_file_keeps_the_store_answering_on_the_raw_score(seeded_db_url, kb_embedder,
                                                                             tmp_path, caplog):
    path = tmp_path / "faq_calibration.json"
    path.write_text('{"format": "kefu-faq-calibration/1", "languages": ', encoding="utf-8")
    store = open_faq_store(seeded_db_url, embedder=kb_embedder, calibrator=path)
    try:
        with caplog.at_level(logging.WARNING, logger="knowledge.calibrator"):
            top = store.search("开户需要带什么证件", limit=3)[0]
            store.search("How do I order a checkbook?", "en", limit=3)
        assert store.calibrator is None
        assert [r.getMessage() for r in caplog.records if "calibrator" in r.getMessage()][:1]  # warned once
        assert len([r for r in caplog.records if r.name == "knowledge.calibrator"]) == 1
        assert top.confidence == top.raw_confidence and top.answerable == (top.raw_confidence >= 0.5)
    finally:
        store.close()


def test_the_paraphrase_file_the_fit_reads_exists():
    assert (KB_DIR / "paraphrases" / "paraphrases.jsonl").is_file()
