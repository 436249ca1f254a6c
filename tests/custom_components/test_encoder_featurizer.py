"""EncoderFeaturizer + BertIntentClassifier on a tiny random BERT: the generic Hugging Face
path through the whole train → persist → load → process cycle, without a download."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from custom_components.bert_intent_classifier import BertIntentClassifier
from custom_components.encoder_featurizer import EncoderFeaturizer, align

EXAMPLES = {
    "greet": ["hello", "hello world", "hello my world", "world hello", "hello hello"],
    "order_status": ["where is my order", "my order", "order where", "where is order", "is my order"],
    "refund": ["refund", "my refund", "where is my refund", "refund refund", "refund is"],
}


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "model")


def tokenizer(tmp_path) -> WhitespaceTokenizer:
    return WhitespaceTokenizer.create(
        WhitespaceTokenizer.get_default_config(), LocalModelStorage(tmp_path), Resource("tok"), context()
    )


def featurizer(model_dir, tmp_path, **overrides) -> EncoderFeaturizer:
    config = {
        **EncoderFeaturizer.get_default_config(),
        "model": str(model_dir), "runtime": "onnx-fp32", "cache_dir": str(tmp_path / "cache"), "max_length": 64,
        **overrides,
    }
    return EncoderFeaturizer.create(config, LocalModelStorage(tmp_path), Resource("enc"), context())


def training_data() -> TrainingData:
    return TrainingData([Message(data={TEXT: t, INTENT: i}) for i, ts in EXAMPLES.items() for t in ts])


def test_align_averages_overlapping_subtokens():
    vectors = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]], dtype=np.float32)
    offsets = [(0, 2), (2, 4), (5, 8)]
    rows = align([(0, 4), (5, 8), (9, 12)], offsets, vectors)
    np.testing.assert_allclose(rows, [[2.0, 0.0], [0.0, 5.0], [4 / 3, 5 / 3]], rtol=1e-6)
    assert align([], [], np.zeros((0, 2), dtype=np.float32)).shape == (0, 2)


def test_features_have_one_row_per_token_and_a_sentence(tiny_bert_dir, tmp_path):
    data = training_data()
    tokenizer(tmp_path).process_training_data(data)
    featurizer(tiny_bert_dir, tmp_path).process_training_data(data)
    for message in data.training_examples:
        sequence, sentence = message.get_dense_features(TEXT)
        assert sequence.features.shape == (len(message.get("text_tokens")), 32)
        assert sentence.features.shape == (1, 32) and np.isfinite(sentence.features).all()


def test_training_encodings_are_cached_by_content(tiny_bert_dir, tmp_path):
    data = training_data()
    tokenizer(tmp_path).process_training_data(data)
    first = featurizer(tiny_bert_dir, tmp_path)
    first.process_training_data(data)
    assert first.cache.hits == 0
    again = training_data()
    again.training_examples.append(Message(data={TEXT: "hello refund", INTENT: "refund"}))
    tokenizer(tmp_path).process_training_data(again)
    second = featurizer(tiny_bert_dir, tmp_path)
    second.process_training_data(again)
    assert (second.cache.hits, second.cache.misses) == (15, 1)
    a = data.training_examples[0].get_dense_features(TEXT)[1].features
    b = again.training_examples[0].get_dense_features(TEXT)[1].features
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("runtime", ["onnx-int8", "onnx-fp32", "tensorflow"])
def test_train_persist_load_process(tiny_bert_dir, tmp_path, runtime):
    data = training_data()
    tokenizer(tmp_path).process_training_data(data)
    feats = featurizer(tiny_bert_dir, tmp_path, runtime=runtime, cache_dir=None)
    feats.process_training_data(data)
    (tmp_path / "storage").mkdir()
    storage = LocalModelStorage(tmp_path / "storage")
    config = {**BertIntentClassifier.get_default_config(), "C": 100.0}
    classifier = BertIntentClassifier.create(config, storage, Resource("intent"), context())
    classifier.train(data)

    texts = ["where is my order", "hello world", "refund", "", "😀😀", "a" * 5000]
    def parse(clf: BertIntentClassifier) -> list:
        messages = [Message(data={TEXT: t}) for t in texts]
        tokenizer(tmp_path).process(messages)
        feats.process(messages)
        clf.process(messages)
        return [(m.get(INTENT) or {}).get("name") for m in messages], [m.get(INTENT) for m in messages]

    before, raw_before = parse(classifier)
    after, raw_after = parse(BertIntentClassifier.load(config, storage, Resource("intent"), context()))
    assert before == after
    assert before[:3] == ["order_status", "greet", "refund"]
    for a, b in zip(raw_before, raw_after, strict=False):
        if a is not None:
            assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-6)


def test_bad_config_is_refused(tiny_bert_dir, tmp_path):
    with pytest.raises(InvalidConfigException, match="runtime"):
        featurizer(tiny_bert_dir, tmp_path, runtime="cuda")
    with pytest.raises(InvalidConfigException, match="max_length"):
        featurizer(tiny_bert_dir, tmp_path, max_length=4)
    with pytest.raises(InvalidConfigException, match="max_length must be between"):
        featurizer(tiny_bert_dir, tmp_path, max_length=128)  # above the tiny model's 64 positions
    with pytest.raises(InvalidConfigException, match="not a loadable"):
        featurizer(tmp_path / "no-such-model", tmp_path)


def test_fine_tune_train_persist_load(tiny_bert_dir, tmp_path):
    """fine_tune: true tunes the encoder on the intents, persists it as ONNX in the model
    storage, and a loaded featurizer produces the same (tuned, different) features."""
    data = training_data()
    tokenizer(tmp_path).process_training_data(data)
    (tmp_path / "storage").mkdir()
    storage = LocalModelStorage(tmp_path / "storage")
    config = {
        **EncoderFeaturizer.get_default_config(),
        "model": str(tiny_bert_dir), "runtime": "onnx-int8", "cache_dir": None, "max_length": 64,
        "fine_tune": True, "fine_tune_epochs": 20, "fine_tune_learning_rate": 2e-3, "fine_tune_batch_size": 8,
    }
    resource = Resource("enc_ft")
    trained = EncoderFeaturizer.create(config, storage, resource, context())
    trained.train(data)
    with storage.read_from(resource) as directory:
        files = sorted(p.name for p in (directory / "encoder").iterdir())
    assert "model.int8.onnx" in files and "model.onnx" not in files and "tf_model.h5" not in files
    loaded = EncoderFeaturizer.load(config, storage, resource, context())
    base = featurizer(tiny_bert_dir, tmp_path, runtime="onnx-int8", cache_dir=None)

    def sentences(feats: EncoderFeaturizer) -> np.ndarray:
        messages = [Message(data={TEXT: t}) for ts in EXAMPLES.values() for t in ts]
        tokenizer(tmp_path).process(messages)
        feats.process(messages)
        return np.vstack([m.get_dense_features(TEXT)[1].features for m in messages])

    tuned, reloaded, original = sentences(trained), sentences(loaded), sentences(base)
    np.testing.assert_allclose(tuned, reloaded, rtol=1e-5, atol=1e-6)
    assert not np.allclose(tuned, original, atol=1e-3)
    # the tuned features separate the three intents better than the random encoder's:
    labels = np.repeat(np.arange(3), 5)

    def margin(x: np.ndarray) -> float:
        centroids = np.vstack([x[labels == k].mean(0) for k in range(3)])
        dist = np.linalg.norm(x[:, None, :] - centroids[None], axis=-1)
        own = dist[np.arange(len(x)), labels]
        other = np.where(np.eye(3, dtype=bool)[labels], np.inf, dist).min(1)
        return float(np.mean(other - own) / np.mean(dist))

    assert margin(tuned) > margin(original)


def test_fine_tune_needs_two_intents_and_valid_settings(tiny_bert_dir, tmp_path):
    data = TrainingData([Message(data={TEXT: "hello", INTENT: "greet"})] * 3)
    tokenizer(tmp_path).process_training_data(data)
    config = {
        **EncoderFeaturizer.get_default_config(),
        "model": str(tiny_bert_dir), "runtime": "onnx-fp32", "cache_dir": None, "max_length": 64, "fine_tune": True,
    }
    feats = EncoderFeaturizer.create(config, LocalModelStorage(tmp_path / "s"), Resource("e"), context())
    with pytest.raises(InvalidConfigException, match="two intents"):
        feats.train(data)
    for key, value in (("fine_tune", "yes"), ("fine_tune_epochs", 0), ("fine_tune_learning_rate", 3)):
        with pytest.raises(InvalidConfigException, match=key):
            EncoderFeaturizer.validate_config({**config, key: value})
    with pytest.raises(InvalidConfigException, match="EncoderFeaturizer"):
        BertIntentClassifier.validate_config({**BertIntentClassifier.get_default_config(), "fine_tune": True})
