"""The rule half of the sentiment component (kefu/sentiment/lexicon.py) through the
component's own `process`: negation, degree, contrast, punctuation, emoji, escalation
cues, English with TextBlob, mixed zh/en, and bad input."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from custom_components.sentiment import SentimentAnalyzer
from kefu.errors import BadInput
from kefu.sentiment import Lexicon, analyze
from kefu.sentiment.lexicon import DEFAULT_DIR

CONTEXT = ExecutionContext(GraphSchema({}), "m")


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


@pytest.fixture
def rules(tmp_path) -> SentimentAnalyzer:
    config = {**SentimentAnalyzer.get_default_config(), "policy": "lexicon"}
    return SentimentAnalyzer.create(
        config, LocalModelStorage(tmp_path), Resource("sentiment"), ExecutionContext(GraphSchema({}), "m")
    )


def parse(component: SentimentAnalyzer, text: str) -> dict:
    (message,) = component.process([Message(data={TEXT: text})])
    value = message.get("sentiment")
    assert set(value) == {"label", "score", "intensity", "signals"}
    assert value["label"] in ("positive", "neutral", "negative")
    assert -1.0 <= value["score"] <= 1.0
    assert value["intensity"] in ("none", "mild", "strong")
    assert (value["intensity"] == "none") == (value["label"] == "neutral")
    [entity] = [e for e in message.get(ENTITIES) if e["entity"] == "sentiment"]
    assert entity["value"] == value["label"] and entity["extractor"] == "SentimentAnalyzer"
    assert "sentiment" in message.as_dict(only_output_properties=True)
    return value


def test_negation_flips_polarity(rules):
    assert parse(rules, "服务很好")["label"] == "positive"
    bad = parse(rules, "我对结果不太满意")
    assert bad["label"] == "negative" and "negation" in bad["signals"]
    assert parse(rules, "我对处理结果并不满意")["label"] == "negative"
    assert parse(rules, "客服态度一点也不差")["score"] > 0  # negated negative: mildly positive
    assert parse(rules, "不错，挺好")["label"] == "positive"  # 不错 is one word, not 不 + 错


def test_degree_adverbs_scale_the_opinion(lexicon):
    plain, strong, weak = (analyze(lexicon, t).score for t in ("发货慢", "发货非常慢", "发货有点慢"))
    assert strong < plain < weak < 0
    assert "degree" in analyze(lexicon, "发货非常慢").signals
    assert analyze(lexicon, "好贵啊").score < 0  # 好 as an adverb before an opinion, not "good"


def test_contrast_weighs_the_second_clause(rules):
    first = parse(rules, "虽然价格便宜，但是质量太差")
    assert first["label"] == "negative" and "contrast" in first["signals"]
    assert parse(rules, "物流有点慢，不过客服态度很好")["label"] == "positive"
    assert parse(rules, "The room was clean but the staff were rude and unhelpful")["score"] < 0.3


def test_exclamation_and_repeated_punctuation(lexicon):
    calm, loud = analyze(lexicon, "太差了"), analyze(lexicon, "太差了！！！")
    assert loud.score < calm.score < 0
    assert {"exclamation", "repeated_punctuation"} <= set(loud.signals)
    impatient = analyze(lexicon, "在吗？？？")
    assert impatient.score < 0 and "repeated_punctuation" in impatient.signals
    assert analyze(lexicon, "谢谢！！！").score > analyze(lexicon, "谢谢").score > 0


@pytest.mark.parametrize(
    "text, label",
    [("😡😡", "negative"), ("👍👍", "positive"), ("谢谢😊", "positive"), ("收到了 :(", "negative"),
     ("等了三天 T_T", "negative"), ("太好了 ^_^", "positive")],
)
def test_emoji_and_emoticons(rules, text, label):
    value = parse(rules, text)
    assert value["label"] == label and "emoji" in value["signals"]


@pytest.mark.parametrize(
    "text, cue",
    [("再不退款我就打12315", "threat"), ("我要投诉你们", "threat"), ("不处理我就找媒体曝光", "threat"),
     ("我要报警", "threat"), ("你们就是骗子", "insult"), ("I will contact my lawyer about this", "threat"),
     ("You are all idiots", "insult"), ("I'm filing a chargeback today.", "threat")],
)
def test_threats_and_insults_are_strongly_negative(rules, text, cue):
    value = parse(rules, text)
    assert value["label"] == "negative" and value["intensity"] == "strong" and cue in value["signals"]


def test_digits_inside_codes_are_not_threats(rules):
    assert "threat" not in parse(rules, "订单号 SO2412315778 什么时候到")["signals"]
    assert "threat" not in parse(rules, "my order 123150 status")["signals"]


def test_english_uses_textblob_with_the_seed_thresholds(rules):
    bad = parse(rules, "This is terrible service")
    assert bad["label"] == "negative" and "textblob_negative" in bad["signals"]
    good = parse(rules, "Excellent service, thank you!")
    assert good["label"] == "positive" and "textblob_positive" in good["signals"]
    assert parse(rules, "This is not good")["label"] == "negative"
    assert parse(rules, "Where is my order")["label"] == "neutral"


def test_mixed_chinese_and_english(rules):
    assert parse(rules, "我的credit card被盗刷了, this is unacceptable")["label"] == "negative"
    assert parse(rules, "thank you, 服务很好")["label"] == "positive"
    assert parse(rules, "我的credit card丢了怎么办")["label"] in ("neutral", "negative")


def test_neutral_questions_stay_neutral(rules):
    for text in ("我想查一下订单", "信用卡的账单日是几号", "How do I reset my password", "你好"):
        assert parse(rules, text)["label"] == "neutral", text


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t", "😀" * 200, "🙂🙃🫠", "\x00\x01\x1b[31m\x7f", "\u202e\u200b\ufeff", "a" * 10_000,
             "差" * 10_000, "投诉" + "好" * 9_998, "\ud800broken surrogate", "ｆｕｌｌｗｉｄｔｈ！！！"],
)
def test_bad_input_gives_a_valid_result(rules, text):
    parse(rules, text)


def test_long_input_is_capped_not_rejected(lexicon):
    long_bad = analyze(lexicon, "差" * 10_000)
    assert long_bad.score < -0.9 and long_bad.hits <= 2000


def test_non_text_messages_are_left_alone(rules):
    (message,) = rules.process([Message(data={})])
    assert message.get("sentiment") is None and not message.get(ENTITIES)


def test_analyze_never_raises_on_non_strings(lexicon):
    assert analyze(lexicon, None).score == 0.0  # type: ignore[arg-type]
    assert analyze(lexicon, 12315).signals == []  # type: ignore[arg-type]


def copy_lexicon(tmp_path):
    target = tmp_path / "lex"
    target.mkdir()
    for path in DEFAULT_DIR.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize(
    "name, content, match",
    [("zh_polarity.tsv", "好\n", "tab-separated"), ("zh_polarity.tsv", "好\tvery\n", "not a number"),
     ("zh_polarity.tsv", "好\t1e9\n", "finite"), ("zh_degree.tsv", "很\tnan\n", "finite"),
     ("en_cues.tsv", "nope\tsarcasm\n", "unknown cue"), ("zh_threat.tsv", "投诉\tcomplaint\n", "unknown cue"),
     ("emoji.tsv", "🙂\thappy\n", "not a number")],
)
def test_malformed_lexicon_files_are_named(tmp_path, name, content, match):
    directory = copy_lexicon(tmp_path)
    (directory / name).write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=match):
        Lexicon.load(directory)


def test_unreadable_or_missing_lexicons_are_refused(tmp_path):
    directory = copy_lexicon(tmp_path)
    (directory / "zh_negation.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BadInput, match="unreadable"):
        Lexicon.load(directory)
    with pytest.raises(BadInput, match="no sentiment lexicon"):
        Lexicon.load(tmp_path / "missing")
    config = {**SentimentAnalyzer.get_default_config(), "lexicon_dir": str(tmp_path / "missing")}
    with pytest.raises(InvalidConfigException, match="lexicon"):
        SentimentAnalyzer.create(config, LocalModelStorage(tmp_path), Resource("s"), CONTEXT)


@pytest.mark.parametrize(
    "override, match",
    [({"policy": "vote"}, "policy"), ({"model_weight": 1.5}, "model_weight"),
     ({"negative_threshold": 0.2}, "thresholds"), ({"strong_threshold": 0}, "strong_threshold"), ({"C": 0}, "C must")],
)
def test_bad_config_is_refused(tmp_path, override, match):
    config = {**SentimentAnalyzer.get_default_config(), **override}
    with pytest.raises(InvalidConfigException, match=match):
        SentimentAnalyzer.create(config, LocalModelStorage(tmp_path), Resource("s"), CONTEXT)


def test_intensity_needs_a_cue_or_an_extreme_score():
    """A confident but plain complaint is mild (frustration needs a second one to escalate)."""
    from kefu.sentiment import LexiconResult, Policy

    policy = Policy()
    plain = LexiconResult(score=-0.8, signals=["zh_lexicon"], hits=1)
    loud = LexiconResult(score=-0.8, signals=["zh_lexicon", "repeated_punctuation"], hits=1)
    threat = LexiconResult(score=-0.8, signals=["threat"], strong_cue=True)
    assert policy.decide(plain, -0.8) == {"label": "negative", "score": -0.8, "intensity": "mild",
                                          "signals": ["zh_lexicon", "model_negative"]}
    assert policy.decide(loud, -0.8)["intensity"] == "strong"
    assert policy.decide(plain, -0.99)["intensity"] == "strong"  # 0.6 * -0.99 + 0.4 * -0.8 < -0.9
    assert policy.decide(threat, 0.9)["intensity"] == "strong"  # a threat wins over a confident head
    assert policy.decide(LexiconResult(), 0.1) == {"label": "neutral", "score": 0.1, "intensity": "none", "signals": []}
    assert Policy(name="model").decide(threat, 0.9)["label"] == "positive"  # model policy ignores the rules
