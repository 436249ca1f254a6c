"""The FAQ answer calibrator (knowledge/calibrator.py): known answers, JSON round trip, the
abstain decision, and files that are corrupt, oversized, empty or hostile. No servers needed."""

from __future__ import annotations

import json
import logging
import math

import pytest

from knowledge.calibrator import (
    DEFAULT_CALIBRATION,
    FEATURES,
    MAX_FILE_BYTES,
    RAW_THRESHOLD,
    AnswerCalibrator,
    LanguageModel,
    decide,
    feature_row,
    load_calibrator,
    read_calibrator,
)
from knowledge.errors import BadInput
from knowledge.search import Hit

N = len(FEATURES)


def vector_only(threshold: float = 0.6, bias: float = 0.0) -> LanguageModel:
    """P = sigmoid(bias + vector): only the top cosine counts, features unscaled."""
    return LanguageModel((0.0,) * N, (1.0,) * N, (1.0,) + (0.0,) * (N - 1), bias, threshold)


def calibrator(zh: LanguageModel | None = None, en: LanguageModel | None = None) -> AnswerCalibrator:
    return AnswerCalibrator({"zh": zh or vector_only(), "en": en or vector_only(0.9)}, {"note": "test"})


def hit(ref: str, vector: float, fts: float = 0.0, trgm: float = 0.0, ranks: dict | None = None,
        confidence: float = 0.0) -> Hit:
    return Hit(ref, {"vector": vector, "fts": fts, "trgm": trgm}, ranks or {}, confidence=confidence)


def test_feature_row_is_the_top_hit_against_its_runner_up():
    top = hit("a", 0.95, fts=1.7, trgm=0.4, ranks={"vector": 1, "fts": 1, "trgm": 2})
    assert feature_row(top, hit("b", 0.90)) == pytest.approx([0.95, 0.05, 0.4, 1.0, 2.0])
    assert feature_row(top, hit("b", 0.99))[1] == 0.0  # a runner-up that scores higher: no margin
    assert feature_row(top, None)[1] == pytest.approx(0.3)  # no runner-up: the capped margin


def test_known_probabilities():
    model = vector_only()
    assert model.probability([0.0] * N) == pytest.approx(0.5)
    assert model.probability([math.log(3)] + [0.0] * (N - 1)) == pytest.approx(0.75)
    scaled = LanguageModel((1.0,) * N, (2.0,) * N, (2.0,) + (0.0,) * (N - 1), -1.0, 0.5)
    assert scaled.probability([3.0] + [0.0] * (N - 1)) == pytest.approx(1 / (1 + math.exp(-1.0)))


def test_probabilities_rise_with_the_score():
    model = vector_only()
    probs = [model.probability([v] + [0.0] * (N - 1)) for v in (-3, -1, 0, 0.5, 1, 4)]
    assert probs == sorted(probs) and len(set(probs)) == len(probs)


def test_extreme_coefficients_do_not_overflow():
    model = LanguageModel((0.0,) * N, (1.0,) * N, (1e300,) * N, 0.0, 0.5)
    assert model.probability([1.0] * N) == pytest.approx(1.0)
    assert model.probability([-1.0] * N) == pytest.approx(0.0)


def test_json_round_trip(tmp_path):
    original = calibrator(en=LanguageModel((0.9, 0.02, 0.3, 0.1, 1.8), (0.03, 0.02, 0.16, 0.06, 0.9),
                                           (0.19, 0.9, -0.02, 0.85, 0.06), -0.69, 0.4424))
    path = tmp_path / "cal.json"
    path.write_text(original.to_json(), encoding="utf-8")
    loaded = read_calibrator(path)
    assert loaded == original
    row = [0.93, 0.03, 0.4, 0.2, 2.0]
    assert loaded.models["en"].probability(row) == original.models["en"].probability(row)
    assert json.loads(path.read_text())["format"] == "kefu-faq-calibration/1"


def test_the_shipped_calibrator_loads_and_is_plain_json():
    shipped = read_calibrator(DEFAULT_CALIBRATION)
    assert set(shipped.models) == {"zh", "en"}
    assert all(0 < m.threshold < 1 for m in shipped.models.values())
    body = json.loads(DEFAULT_CALIBRATION.read_text(encoding="utf-8"))
    assert body["meta"]["oof"]["zh"]["oof_wrong"] <= 0.05 and body["meta"]["oof"]["en"]["oof_wrong"] <= 0.05


def test_only_a_confident_top_hit_is_answerable():
    hits = [hit("a", 2.0), hit("b", 1.9), hit("c", -1.0)]
    decisions = decide(hits, "zh", calibrator())  # zh threshold 0.6; sigmoid(2.0) = 0.88
    assert decisions[0].answerable and decisions[0].abstained_reason is None
    assert decisions[0].confidence == pytest.approx(0.8808, abs=1e-4)
    assert [d.answerable for d in decisions[1:]] == [False, False]
    assert decisions[1].abstained_reason == "not the top hit"
    confidences = [d.confidence for d in decisions]
    assert confidences == sorted(confidences, reverse=True)


def test_below_the_language_threshold_abstains_with_a_reason():
    [decision] = decide([hit("a", 1.0)], "en", calibrator())  # en threshold 0.9; sigmoid(1.0) = 0.73
    assert not decision.answerable
    assert decision.abstained_reason == "calibrated (en) confidence 0.73 below 0.90"
    [same] = decide([hit("a", 1.0)], "zh", calibrator())  # the same hit clears zh's 0.6
    assert same.answerable


def test_without_a_calibrator_the_raw_threshold_decides():
    answered, below = hit("a", 0.9, confidence=0.62), hit("b", 0.9, confidence=0.31)
    assert decide([answered], "zh", None)[0].answerable
    [decision] = decide([below], "zh", None)
    assert not decision.answerable and decision.confidence == 0.31
    assert f"{RAW_THRESHOLD:.2f}" in decision.abstained_reason


def test_no_hits_no_decisions():
    assert decide([], "zh", calibrator()) == []


def good_body() -> dict:
    return json.loads(calibrator().to_json())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(format="kefu-faq-calibration/0"), "format"),
        (lambda b: b.update(features=["vector"]), "features"),
        (lambda b: b["languages"].pop("en"), "languages"),
        (lambda b: b["languages"].update(fr=b["languages"]["zh"]), "languages"),
        (lambda b: b["languages"]["zh"].update(coef=[1, 2]), "coef"),
        (lambda b: b["languages"]["zh"].update(coef=["1", 0, 0, 0, 0]), "coef"),
        (lambda b: b["languages"]["zh"].update(coef=[True, 0, 0, 0, 0]), "coef"),
        (lambda b: b["languages"]["zh"].update(scale=[0, 1, 1, 1, 1]), "scale"),
        (lambda b: b["languages"]["en"].update(threshold=1.5), "threshold"),
        (lambda b: b["languages"]["en"].pop("bias"), "bias"),
        (lambda b: b["languages"].update(en=[1, 2, 3]), "en"),
    ],
)
def test_malformed_calibrators_are_refused_with_a_clear_error(tmp_path, mutate, message):
    body = good_body()
    mutate(body)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        read_calibrator(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"   ", b"{not json", b"[]", b"null", b"\xff\xfe\x00garbage",
     b'{"format": "kefu-faq-calibration/1", "features": ["vector", "margin", "trgm", "fts", "agree"], '
     b'"languages": {"zh": {"mean": [NaN, 0, 0, 0, 0]}}}'],
    ids=["empty", "blank", "truncated", "list", "null", "binary", "nan"],
)
def test_corrupt_or_empty_files_are_refused(tmp_path, content):
    path = tmp_path / "cal.json"
    path.write_bytes(content)
    with pytest.raises(BadInput, match="calibrator"):
        read_calibrator(path)


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "cal.json"
    body = good_body()
    body["meta"] = {"padding": "x" * MAX_FILE_BYTES}
    path.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(BadInput, match="limit"):
        read_calibrator(path)


def test_deeply_nested_json_is_refused_not_crashing(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text("[" * 20000 + "]" * 20000, encoding="utf-8")
    with pytest.raises(BadInput):
        read_calibrator(path)


def test_a_bad_file_falls_back_to_the_raw_threshold_with_a_warning(tmp_path, caplog):
    path = tmp_path / "cal.json"
    path.write_text("{broken", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="knowledge.calibrator"):
        assert load_calibrator(path) is None
        assert load_calibrator(tmp_path / "missing.json") is None
    assert len(caplog.records) == 2
    assert "raw score" in caplog.records[0].getMessage() and "cal.json" in caplog.records[0].getMessage()
