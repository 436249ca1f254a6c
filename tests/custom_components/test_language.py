from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from custom_components.language import LanguageDetector


def detector(tmp_path) -> LanguageDetector:
    return LanguageDetector.create(
        LanguageDetector.get_default_config(), LocalModelStorage(tmp_path), Resource("lang"),
        ExecutionContext(GraphSchema({}), "m"),
    )


def languages(tmp_path, *texts: str) -> list:
    messages = detector(tmp_path).process([Message(data={TEXT: t}) for t in texts])
    return [[e["value"] for e in m.get(ENTITIES, []) if e["entity"] == "language"] for m in messages]


def test_marks_each_message_with_its_language(tmp_path):
    assert languages(tmp_path, "我的卡丢了", "I lost my card", "我的credit card丢了") == [["zh"], ["en"], ["zh"]]


def test_says_nothing_when_there_are_no_letters(tmp_path):
    assert languages(tmp_path, "🙂🙂", "13812345678", "") == [[], [], []]


def test_entity_is_visible_in_the_parse_output(tmp_path):
    (message,) = detector(tmp_path).process([Message(data={TEXT: "hello"})])
    entity = message.as_dict(only_output_properties=True)[ENTITIES][0]
    assert entity["entity"] == "language" and entity["extractor"] == "LanguageDetector"


def test_ascii_scraps_keep_the_conversation_language(tmp_path):
    """Pilot: "abcd" in a Chinese chat switched the replies to English; now it says nothing."""
    assert languages(tmp_path, "abcd", "ok", "hello", "refund please") == [[], [], ["en"], ["en"]]
