"""One property harness run over every NLU component of ours (as rasa-nlu-examples does):
whatever text arrives, `process` keeps the message count, keeps other components'
entities, and never raises."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from custom_components.language import LanguageDetector
from custom_components.sentiment import SentimentAnalyzer

COMPONENTS: list[Callable[..., Any]] = [LanguageDetector, SentimentAnalyzer]
ODD_TEXTS = ["", " ", "🙂" * 50, "\x00\x01\x1b[31m", "a" * 10000, "我的credit card丢了!!!", "\u202e\u200b", "ｆｕｌｌ"]


@pytest.fixture(params=COMPONENTS, ids=lambda c: c.__name__)
def component(request, tmp_path):
    cls = request.param
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    return cls.create({**cls.get_default_config()}, storage, Resource(cls.__name__), context)


def check(component, texts: list[str]) -> None:
    previous = {"entity": "other", "value": "x", "start": 0, "end": 0, "extractor": "Other"}
    messages = [Message(data={TEXT: t, ENTITIES: [previous]}) for t in texts]
    out = component.process(messages)
    assert len(out) == len(texts)
    for message in out:
        assert previous in message.get(ENTITIES)


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_odd_inputs(component, text):
    check(component, [text])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=300), min_size=1, max_size=8))
def test_any_text(component, texts):
    check(component, texts)
