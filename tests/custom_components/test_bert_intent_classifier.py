"""BertIntentClassifier on synthetic sentence features: train → persist → load → same
predictions, both heads, ranking length, and the untrained guard."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from custom_components.bert_intent_classifier import BertIntentClassifier

INTENTS = ["greet", "order_status", "report_lost_card", "ask_fees"]


def message(vector: np.ndarray, intent: str | None = None, text: str = "x") -> Message:
    msg = Message(data={TEXT: text, **({INTENT: intent} if intent else {})})
    msg.add_features(Features(vector.reshape(1, -1).astype(np.float32), FEATURE_TYPE_SENTENCE, TEXT, "Encoder"))
    return msg


def clusters(n_per_intent: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    centres = np.eye(len(INTENTS), 16) * 4.0
    vectors, labels = [], []
    for i, intent in enumerate(INTENTS):
        for _ in range(n_per_intent):
            vectors.append(centres[i] + rng.normal(0, 0.5, 16))
            labels.append(intent)
    return vectors, labels


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "model")


@pytest.mark.parametrize("head", ["logistic_regression", "mlp"])
def test_train_persist_load_gives_the_same_predictions(tmp_path, head):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent")
    config = {**BertIntentClassifier.get_default_config(), "head": head, "hidden_layers": [16]}
    component = BertIntentClassifier.create(config, storage, resource, context())
    vectors, labels = clusters(20, seed=1)
    component.train(TrainingData([message(v, label) for v, label in zip(vectors, labels, strict=False)]))

    test_vectors, test_labels = clusters(5, seed=2)
    first = component.process([message(v) for v in test_vectors])
    loaded = BertIntentClassifier.load(config, storage, resource, context())
    second = loaded.process([message(v) for v in test_vectors])

    predicted = [m.get(INTENT)["name"] for m in first]
    assert predicted == [m.get(INTENT)["name"] for m in second]
    assert np.mean(np.array(predicted) == np.array(test_labels)) >= 0.95
    for a, b in zip(first, second, strict=False):
        assert a.get(INTENT)["confidence"] == pytest.approx(b.get(INTENT)["confidence"], abs=1e-6)
        ranking = a.get("intent_ranking")
        assert len(ranking) == len(INTENTS)
        assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-5)
        assert ranking[0]["name"] == a.get(INTENT)["name"]


def test_ranking_length_and_two_classes(tmp_path):
    storage = LocalModelStorage(tmp_path)
    config = {**BertIntentClassifier.get_default_config(), "ranking_length": 1}
    component = BertIntentClassifier.create(config, storage, Resource("i"), context())
    vectors, labels = clusters(10, seed=3)
    two = [(v, label) for v, label in zip(vectors, labels, strict=False) if label in ("greet", "ask_fees")]
    component.train(TrainingData([message(v, label) for v, label in two]))
    (out,) = component.process([message(two[0][0])])
    assert out.get(INTENT)["name"] == "greet" and len(out.get("intent_ranking")) == 1


def test_untrained_guard_leaves_messages_unclassified(tmp_path):
    storage = LocalModelStorage(tmp_path)
    config = BertIntentClassifier.get_default_config()
    loaded = BertIntentClassifier.load(config, storage, Resource("never-trained"), context())
    (out,) = loaded.process([message(np.ones(16))])
    assert out.get(INTENT) is None


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(InvalidConfigException, match="head"):
        BertIntentClassifier.create({"head": "svm"}, LocalModelStorage(tmp_path), Resource("i"), context())


def test_missing_features_are_a_clear_error(tmp_path):
    component = BertIntentClassifier.create({}, LocalModelStorage(tmp_path), Resource("i"), context())
    with pytest.raises(InvalidConfigException, match="EncoderFeaturizer"):
        examples = [Message(data={TEXT: "hi", INTENT: "greet"}), Message(data={TEXT: "yo", INTENT: "x"})]
        component.train(TrainingData(examples))


def routing_file(tmp_path, **keys) -> str:
    import yaml

    from kefu.config import PROJECT_ROOT

    raw = yaml.safe_load((PROJECT_ROOT / "data" / "routing.yml").read_text(encoding="utf-8"))
    raw.update(keys)
    for key in [k for k, v in keys.items() if v is None]:
        del raw[key]
    path = tmp_path / "routing.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_calibrated_scores_thresholds_and_oos_survive_persistence(tmp_path):
    (tmp_path / "model").mkdir()
    storage = LocalModelStorage(tmp_path / "model")
    resource = Resource("intent")
    config = {**BertIntentClassifier.get_default_config(), "routing_file": routing_file(
        tmp_path, auto_precision=0.95, specialist_precision=0.8, min_band_support=5, intent_thresholds={
            "report_lost_card": {"auto_precision": 0.99}})}
    component = BertIntentClassifier.create(config, storage, resource, context())
    vectors, labels = clusters(20, seed=11)
    component.train(TrainingData([message(v, label) for v, label in zip(vectors, labels, strict=False)]))
    plan = component.model.plan
    assert plan["calibration"]["method"] == "temperature" and plan["thresholds"]["mode"] == "targets"
    assert plan["thresholds"]["targets"]["auto_precision"] == 0.95
    assert "report_lost_card" in plan["thresholds"]["intents"]

    far = np.full(16, 9.0)  # nowhere near any of the four intents
    test_vectors, _ = clusters(3, seed=12)
    first = component.process([message(v) for v in [*test_vectors, far]])
    second = BertIntentClassifier.load(config, storage, resource, context()).process(
        [message(v) for v in [*test_vectors, far]])
    for a, b in zip(first, second, strict=True):
        assert a.get(INTENT) == b.get(INTENT)
        assert a.get("intent_thresholds") == b.get("intent_thresholds")
        assert a.get("out_of_scope") == b.get("out_of_scope")
    thresholds = first[0].get("intent_thresholds")
    assert thresholds["source"] in ("targets", "intent") and 0 <= thresholds["specialist"] <= thresholds["auto"] <= 1
    lost = next(m for m in first if m.get(INTENT)["name"] == "report_lost_card")
    assert lost.get("intent_thresholds")["source"] == "intent"
    assert first[-1].get("out_of_scope")["flagged"] is True
    assert sum(m.get("out_of_scope")["flagged"] for m in first[:-1]) <= 2
    # the persisted plan is what `kefu thresholds` reads from the archive
    from kefu.intent_head import json_safe
    from kefu.thresholds import read_plan

    assert read_plan(tmp_path / "model")["thresholds"] == json_safe(plan["thresholds"])


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"auto_precision": 1.5}, "auto_precision"),
        ({"auto_precision": 0.8, "specialist_precision": 0.9}, "specialist_precision"),
        ({"specialist_precision": None}, "specialist_precision is missing"),
        ({"intent_thresholds": {"freeze_card": {"auto_precision": -1}}}, "freeze_card.auto_precision"),
    ],
)
def test_bad_targets_stop_training_naming_the_key(tmp_path, keys, named):
    config = {**BertIntentClassifier.get_default_config(), "routing_file": routing_file(tmp_path, **keys)}
    component = BertIntentClassifier.create(config, LocalModelStorage(tmp_path / "m"), Resource("i"), context())
    vectors, labels = clusters(5, seed=13)
    with pytest.raises(InvalidConfigException, match=named):
        component.train(TrainingData([message(v, label) for v, label in zip(vectors, labels, strict=False)]))


@pytest.mark.parametrize(
    ("key", "value"), [("calibration", "platt"), ("calibration_folds", 1), ("oos_in_scope_recall", 1.0)]
)
def test_bad_calibration_settings_are_refused(tmp_path, key, value):
    with pytest.raises(InvalidConfigException, match=key):
        BertIntentClassifier.create({key: value}, LocalModelStorage(tmp_path), Resource("i"), context())
