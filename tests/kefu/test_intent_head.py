"""The Rasa-free intent model: out-of-fold calibration, thresholds and out-of-scope scoring, persisted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kefu.calibration import expected_calibration_error
from kefu.intent_head import HeadOptions, IntentModel, json_safe, train_intent_model
from kefu.oos import DistanceModel
from kefu.thresholds import Targets


def blobs(per_intent: int, intents: int = 12, dim: int = 48, spread: float = 1.6, seed: int = 0, centres=None):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (intents, dim)) if centres is None else centres
    x = np.vstack([c + rng.normal(0, spread, (per_intent, dim)) / np.sqrt(dim) * 4 for c in centres])
    y = [f"intent_{i}" for i in range(len(centres)) for _ in range(per_intent)]
    return x.astype(np.float32), y, centres


TARGETS = Targets(auto_precision=0.95, specialist_precision=0.7, min_support=10)


def test_out_of_fold_calibration_improves_test_ece_and_sets_thresholds():
    x, y, centres = blobs(15, seed=1)
    model = train_intent_model(x, y, HeadOptions(), TARGETS)
    cal = model.plan["calibration"]
    assert cal["method"] == "temperature" and cal["folds"] == 5 and cal["examples"] == len(y)
    assert cal["after"]["nll"] <= cal["before"]["nll"]
    test_x, test_y, _ = blobs(40, seed=2, centres=centres)
    truth = np.array([model.head.classes.index(t) for t in test_y])
    raw = model.head.predict_proba(test_x)
    calibrated, scores = model.predict(test_x)
    assert expected_calibration_error(calibrated, truth) < expected_calibration_error(raw, truth)
    assert (calibrated.argmax(axis=1) == raw.argmax(axis=1)).all()
    plan = model.plan["thresholds"]
    assert plan["mode"] == "targets" and 0.0 <= plan["specialist"] <= plan["auto"] <= 1.0
    assert plan["data"]["examples"] == len(y)
    assert scores is not None and scores.shape == (len(test_y),)


def test_train_persist_load_gives_the_same_thresholds_and_scores(tmp_path):
    x, y, centres = blobs(12, seed=3)
    model = train_intent_model(x, y, HeadOptions(calibration="isotonic"), TARGETS, {"routing_file": "r.yml"})
    model.save(tmp_path)
    loaded = IntentModel.load(tmp_path)
    test_x, _, _ = blobs(5, seed=4, centres=centres)
    probs, scores = model.predict(test_x)
    probs2, scores2 = loaded.predict(test_x)
    assert np.allclose(probs, probs2) and np.allclose(scores, scores2)
    assert loaded.plan == json.loads(json.dumps(json_safe(model.plan)))
    assert loaded.oos.threshold == pytest.approx(model.oos.threshold)
    assert loaded.plan["thresholds"]["data"]["routing_file"] == "r.yml"


def test_messages_from_unknown_intents_score_as_out_of_scope():
    x, y, centres = blobs(20, intents=16, seed=5)
    known = [label not in ("intent_14", "intent_15") for label in y]
    model = train_intent_model(x[known], [label for label, k in zip(y, known, strict=True) if k], HeadOptions())
    test_x, test_y, _ = blobs(20, intents=16, seed=6, centres=centres)
    _, scores = model.predict(test_x)
    unknown = np.array([label in ("intent_14", "intent_15") for label in test_y])
    flagged = scores > model.oos.threshold
    assert flagged[unknown].mean() > 0.6  # most unknown-intent messages are caught
    assert flagged[~unknown].mean() < 0.2  # in-scope recall near the 95 % it was set for
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(unknown, scores) > 0.85


def test_an_out_of_scope_intent_in_the_data_is_a_class_not_a_centroid():
    x, y, centres = blobs(10, intents=5, seed=7)
    rng = np.random.default_rng(8)
    noise = rng.normal(0, 3, (30, x.shape[1])).astype(np.float32)
    model = train_intent_model(np.vstack([x, noise]), y + ["out_of_scope"] * 30, HeadOptions())
    assert "out_of_scope" in model.head.classes
    assert model.oos.distances.centroids.shape[0] == 5  # in-scope intents only


def test_distance_model_refuses_data_without_in_scope_intents():
    with pytest.raises(ValueError, match="in-scope"):
        DistanceModel.fit(np.ones((3, 4)), ["out_of_scope"] * 3, exclude={"out_of_scope"})


def test_no_calibration_no_oos_trains_only_the_head():
    x, y, _ = blobs(5, intents=3, seed=9)
    model = train_intent_model(x, y, HeadOptions(calibration="none", out_of_scope=False))
    assert model.oos is None and model.plan == {"calibration": {"method": "none"}}
    probs, scores = model.predict(x)
    assert scores is None and np.allclose(probs, model.head.predict_proba(x))


def test_a_broken_model_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        IntentModel.load(tmp_path)
    (tmp_path / "head.npz").write_bytes(b"not a zip")
    with pytest.raises((ValueError, OSError)):
        IntentModel.load(tmp_path)
