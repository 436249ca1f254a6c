"""The shipped configuration end to end on the real multilingual-e5-small (skipped when
`make model` has not converted it yet): trained on data/sentiment, the component labels
unseen customer messages. The two sarcastic ones are its known weakness (both missed
when this was written: 8 of 10 right), so the bar is the overall count, not each case."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from custom_components.encoder_featurizer import EncoderFeaturizer
from custom_components.sentiment import SentimentAnalyzer
from kefu.config import PROJECT_ROOT

E5 = PROJECT_ROOT / "models" / "encoder" / "multilingual-e5-small"
# written for this test, not in data/sentiment
UNSEEN = [
    ("客服一直不回消息，我已经等了两天了", "negative"),
    ("真是谢谢你们了，让我多跑了三趟", "negative"),
    ("这个月的账单怎么查", "neutral"),
    ("请问支持花呗分期吗", "neutral"),
    ("问题处理得很快，非常感谢", "positive"),
    ("My parcel has been stuck in customs for two weeks and nobody replies", "negative"),
    ("Oh wonderful, charged twice again", "negative"),
    ("Can I change my delivery slot to Friday", "neutral"),
    ("What is the interest rate on savings", "neutral"),
    ("Thank you, the replacement arrived today and works great", "positive"),
]

SARCASM = {UNSEEN[1][0], UNSEEN[6][0]}

pytestmark = pytest.mark.skipif(
    not (E5 / "model.int8.onnx").is_file(), reason="run `make model` to convert the encoder"
)


def test_shipped_component_labels_unseen_messages(tmp_path):
    context = ExecutionContext(GraphSchema({}), "model")
    (tmp_path / "m").mkdir()
    storage = LocalModelStorage(tmp_path / "m")
    cache = {"cache_dir": str(tmp_path / "cache")}
    component = SentimentAnalyzer.create(
        {**SentimentAnalyzer.get_default_config(), **cache}, storage, Resource("s"), context
    )
    component.train(TrainingData())
    tokenizer = WhitespaceTokenizer.create(WhitespaceTokenizer.get_default_config(), storage, Resource("t"), context)
    featurizer = EncoderFeaturizer.create(
        {**EncoderFeaturizer.get_default_config(), **cache}, storage, Resource("e"), context
    )
    messages = [Message(data={TEXT: text}) for text, _ in UNSEEN]
    tokenizer.process(messages)
    featurizer.process(messages)
    component.process(messages)
    predicted = [m.get("sentiment")["label"] for m in messages]
    correct = sum(p == gold for p, (_, gold) in zip(predicted, UNSEEN, strict=True))
    assert correct >= 8, list(zip(predicted, UNSEEN, strict=True))
    plain = [p == gold for p, (text, gold) in zip(predicted, UNSEEN, strict=True) if text not in SARCASM]
    assert all(plain), list(zip(predicted, UNSEEN, strict=True))
