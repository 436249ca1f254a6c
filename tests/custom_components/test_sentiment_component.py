"""SentimentAnalyzer's learned half: train on its own labelled set → persist → load → the
same results, reading the sentence vector the EncoderFeaturizer wrote (tiny random BERT,
no download); train-time vectors equal inference-time ones; encodings are cached."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from custom_components.encoder_featurizer import EncoderFeaturizer
from custom_components.sentiment import HEAD_FILE, LEXICON_DIR, SentimentAnalyzer
from kefu.errors import BadInput
from kefu.sentiment import load_labelled
from kefu.sentiment.encoding import SentenceEncoder

LABELLED = {
    "negative": ["refund is late", "my order is broken", "where is my refund !", "order order broken", "is late"],
    "neutral": ["where is my order", "my card", "order", "is my card", "card order"],
    "positive": ["hello thanks", "great refund", "hello great", "thanks world", "world great"],
}
PROBES = ["where is my refund", "hello world", "my card is broken !!", "", "😀"]


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "model")


def store(path) -> LocalModelStorage:
    path.mkdir(parents=True, exist_ok=True)
    return LocalModelStorage(path)


def write_labelled(directory) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# label<TAB>text"] + [f"{label}\t{t}" for label, texts in LABELLED.items() for t in texts]
    (directory / "set.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def encoder_config(tiny_bert_dir, tmp_path) -> dict:
    return {"model": str(tiny_bert_dir), "runtime": "onnx-fp32", "max_length": 64, "pooling": "mean",
            "cache_dir": str(tmp_path / "cache")}


def sentiment_config(tiny_bert_dir, tmp_path, **overrides) -> dict:
    write_labelled(tmp_path / "data")
    return {**SentimentAnalyzer.get_default_config(), **encoder_config(tiny_bert_dir, tmp_path),
            "data_dir": str(tmp_path / "data"), **overrides}


def featurized(tiny_bert_dir, tmp_path, texts) -> list[Message]:
    """Messages as the pipeline hands them over: tokenised, then featurised by EncoderFeaturizer."""
    storage = store(tmp_path / "pipeline")
    tokenizer = WhitespaceTokenizer.create(WhitespaceTokenizer.get_default_config(), storage, Resource("t"), context())
    featurizer = EncoderFeaturizer.create(
        {**EncoderFeaturizer.get_default_config(), **encoder_config(tiny_bert_dir, tmp_path)},
        storage, Resource("e"), context(),
    )
    messages = [Message(data={TEXT: t}) for t in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    return messages


def test_train_persist_load_gives_the_same_results(tiny_bert_dir, tmp_path):
    storage, resource = store(tmp_path / "model"), Resource("sentiment")
    config = sentiment_config(tiny_bert_dir, tmp_path)
    trained = SentimentAnalyzer.create(config, storage, resource, context())
    trained.train(TrainingData())
    assert trained.head is not None and trained.head.classes == ["negative", "neutral", "positive"]
    with storage.read_from(resource) as directory:
        assert (directory / HEAD_FILE).is_file() and (directory / LEXICON_DIR / "zh_polarity.tsv").is_file()

    first = trained.process(featurized(tiny_bert_dir, tmp_path, PROBES))
    loaded = SentimentAnalyzer.load(config, storage, resource, context())
    second = loaded.process(featurized(tiny_bert_dir, tmp_path, PROBES))
    for a, b in zip(first, second, strict=True):
        assert a.get("sentiment") == b.get("sentiment")
    assert loaded.head is not None and loaded.head.classes == trained.head.classes
    np.testing.assert_array_equal(loaded.head.weight, trained.head.weight)
    np.testing.assert_array_equal(loaded.head.bias, trained.head.bias)


def test_head_fits_its_training_set(tiny_bert_dir, tmp_path):
    """A random tiny BERT still separates 15 sentences: proves the head learns from data_dir."""
    config = sentiment_config(tiny_bert_dir, tmp_path, policy="model", C=1000.0)
    component = SentimentAnalyzer.create(config, store(tmp_path / "m"), Resource("s"), context())
    component.train(TrainingData())
    texts = [t for texts in LABELLED.values() for t in texts]
    labels = [label for label, texts in LABELLED.items() for _ in texts]
    predicted = [m.get("sentiment") for m in component.process(featurized(tiny_bert_dir, tmp_path, texts))]
    by_score = [
        "negative" if p["score"] <= -0.3 else "positive" if p["score"] >= 0.3 else "neutral" for p in predicted
    ]
    assert np.mean(np.array(by_score) == np.array(labels)) >= 0.8


def test_train_time_vectors_equal_what_the_featurizer_writes(tiny_bert_dir, tmp_path):
    texts = ["where is my refund", "hello world !"]
    encoder = SentenceEncoder(str(tiny_bert_dir), runtime="onnx-fp32", max_length=64, pooling="mean")
    trained_side = encoder.encode(texts)
    for row, message in zip(trained_side, featurized(tiny_bert_dir, tmp_path, texts), strict=True):
        np.testing.assert_allclose(row, message.get_dense_features(TEXT)[1].features.reshape(-1), rtol=1e-5, atol=1e-6)


def test_retraining_reuses_cached_encodings(tiny_bert_dir, tmp_path):
    config = sentiment_config(tiny_bert_dir, tmp_path)
    first = SentimentAnalyzer.create(config, store(tmp_path / "a"), Resource("s"), context())
    first.train(TrainingData())
    cache = tmp_path / "cache" / "encodings.sqlite3"
    assert cache.is_file()
    encoder = SentenceEncoder(str(tiny_bert_dir), runtime="onnx-fp32", max_length=64, cache_file=cache)
    encoder.encode([t for texts in LABELLED.values() for t in texts])
    assert (encoder.cache.hits, encoder.cache.misses) == (15, 0)


def test_fingerprint_changes_when_the_labelled_set_or_lexicon_changes(tiny_bert_dir, tmp_path):
    config = sentiment_config(tiny_bert_dir, tmp_path)
    before = SentimentAnalyzer.fingerprint_addon(config)
    assert before == SentimentAnalyzer.fingerprint_addon(config)
    with (tmp_path / "data" / "set.tsv").open("a", encoding="utf-8") as handle:
        handle.write("negative\tbroken again\n")
    assert SentimentAnalyzer.fingerprint_addon(config) != before


def test_untrained_model_falls_back_to_rules(tmp_path, caplog):
    config = SentimentAnalyzer.get_default_config()
    with caplog.at_level(logging.WARNING):
        loaded = SentimentAnalyzer.load(config, LocalModelStorage(tmp_path), Resource("never"), context())
    assert loaded.head is None and "rules alone" in caplog.text
    message = Message(data={TEXT: "太差了"})
    message.add_features(Features(np.ones((1, 8), np.float32), FEATURE_TYPE_SENTENCE, TEXT, "Encoder"))
    (out,) = loaded.process([message])
    assert out.get("sentiment")["label"] == "negative"


def test_features_of_the_wrong_width_are_ignored_with_a_warning(tiny_bert_dir, tmp_path, caplog):
    config = sentiment_config(tiny_bert_dir, tmp_path)
    component = SentimentAnalyzer.create(config, store(tmp_path / "m"), Resource("s"), context())
    component.train(TrainingData())
    odd = []
    for vector in (np.ones((1, 7), np.float32), np.full((1, 32), np.nan, np.float32)):
        message = Message(data={TEXT: "thanks, great"})
        message.add_features(Features(vector, FEATURE_TYPE_SENTENCE, TEXT, "Encoder"))
        odd.append(message)
    with caplog.at_level(logging.WARNING):
        out = component.process(odd)
    assert all(m.get("sentiment")["label"] == "positive" for m in out)
    assert not any(s.startswith("model_") for m in out for s in m.get("sentiment")["signals"])
    assert "head expects 32" in caplog.text


@pytest.mark.parametrize(
    "content, match",
    [("angry\tthis is bad\n", "expected"), ("negative\n", "expected"), ("negative\t   \n", "expected"),
     ("positive\t" + "好" * 1001 + "\n", "longer than")],
)
def test_malformed_labelled_files_are_named(tmp_path, content, match):
    (tmp_path / "bad.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=match):
        load_labelled(tmp_path)


def test_missing_or_binary_labelled_set_is_a_config_error(tiny_bert_dir, tmp_path):
    with pytest.raises(BadInput, match="no labelled"):
        load_labelled(tmp_path / "nothing")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.tsv").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(BadInput, match="unreadable"):
        load_labelled(tmp_path / "bin")
    config = {**sentiment_config(tiny_bert_dir, tmp_path), "data_dir": str(tmp_path / "nothing")}
    component = SentimentAnalyzer.create(config, store(tmp_path / "m"), Resource("s"), context())
    with pytest.raises(InvalidConfigException, match="no labelled"):
        component.train(TrainingData())


def test_lexicon_policy_trains_no_head(tmp_path):
    config = {**SentimentAnalyzer.get_default_config(), "policy": "lexicon", "data_dir": str(tmp_path / "none")}
    storage, resource = LocalModelStorage(tmp_path), Resource("s")
    SentimentAnalyzer.create(config, storage, resource, context()).train(TrainingData())
    loaded = SentimentAnalyzer.load(config, storage, resource, context())
    assert loaded.head is None
    (out,) = loaded.process([Message(data={TEXT: "非常满意"})])
    assert out.get("sentiment")["label"] == "positive"


def test_shipped_labelled_set_is_large_balanced_and_bilingual():
    from collections import Counter

    from kefu.config import PROJECT_ROOT

    pairs = load_labelled(PROJECT_ROOT / "data" / "sentiment")
    assert len(pairs) >= 600 and len({t for t, _ in pairs}) == len(pairs)
    counts = Counter(label for _, label in pairs)
    assert all(0.3 <= counts[label] / len(pairs) <= 0.37 for label in ("negative", "neutral", "positive"))
    chinese = sum(1 for t, _ in pairs if any("\u4e00" <= c <= "\u9fff" for c in t))
    assert 0.4 <= chinese / len(pairs) <= 0.6


def nlu_examples(tiny_bert_dir, tmp_path) -> TrainingData:
    """NLU examples as the graph hands them to train(): featurised by the EncoderFeaturizer."""
    return TrainingData(featurized(tiny_bert_dir, tmp_path, ["where is my order", "hello world", "my refund"]))


def test_head_trains_when_featurizer_and_component_agree(tiny_bert_dir, tmp_path):
    config = sentiment_config(tiny_bert_dir, tmp_path)
    component = SentimentAnalyzer.create(config, store(tmp_path / "m"), Resource("s"), context())
    component.train(nlu_examples(tiny_bert_dir, tmp_path))
    assert component.head is not None


def test_head_is_not_trained_on_vectors_the_featurizer_does_not_write(tiny_bert_dir, tmp_path, caplog):
    """The featurizer pools by mean; a component set to CLS pooling would read another space."""
    config = sentiment_config(tiny_bert_dir, tmp_path, pooling="cls")
    storage, resource = store(tmp_path / "m"), Resource("s")
    component = SentimentAnalyzer.create(config, storage, resource, context())
    with caplog.at_level(logging.ERROR):
        component.train(nlu_examples(tiny_bert_dir, tmp_path))
    assert component.head is None and "different sentence vectors" in caplog.text
    loaded = SentimentAnalyzer.load(config, storage, resource, context())
    (out,) = loaded.process(featurized(tiny_bert_dir, tmp_path, ["refund is late , very bad"]))
    assert out.get("sentiment")["label"] == "negative"
