"""The `sentiment` slot fills through a real trained Rasa model: a small bot (whitespace
tokenizer, tiny random BERT, EncoderFeaturizer, SentimentAnalyzer, BertIntentClassifier,
RulePolicy) is trained with `rasa.model_training.train` in a tmp dir, loaded with
`Agent`, and spoken to; the tracker shows the slot and latest_message["sentiment"]."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent

LABELLED = """negative\trefund is late
negative\tmy order is broken
negative\torder broken again
positive\thello thanks
positive\tgreat refund thanks
positive\tthanks world
neutral\twhere is my order
neutral\tmy card
neutral\tis my card
"""


def write_bot(root: Path, tiny_bert: Path) -> dict[str, Path]:
    (root / "sentiment").mkdir(parents=True)
    (root / "sentiment" / "set.tsv").write_text(LABELLED, encoding="utf-8")
    encoder = {"model": str(tiny_bert), "runtime": "onnx-fp32", "max_length": 64, "cache_dir": str(root / "cache")}
    files = {name: root / f"{name}.yml" for name in ("config", "domain", "nlu", "rules")}
    config = {
        "recipe": "default.v1",
        "language": "en",
        "assistant_id": "sentiment-test",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "custom_components.encoder_featurizer.EncoderFeaturizer", **encoder},
            {"name": "custom_components.sentiment.SentimentAnalyzer", **encoder, "data_dir": str(root / "sentiment")},
            {"name": "custom_components.bert_intent_classifier.BertIntentClassifier"},
        ],
        "policies": [{"name": "RulePolicy"}],
    }
    files["config"].write_text(yaml.safe_dump(config), encoding="utf-8")
    files["domain"].write_text(
        textwrap.dedent(
            """\
            version: "3.1"
            intents: [greet, complain]
            entities: [sentiment]
            slots:
              sentiment:
                type: categorical
                values: [positive, neutral, negative]
                influence_conversation: false
                mappings:
                  - type: from_entity
                    entity: sentiment
            responses:
              utter_greet:
                - text: hi
              utter_sorry:
                - text: sorry
            """
        ),
        encoding="utf-8",
    )
    files["nlu"].write_text(
        textwrap.dedent(
            """\
            version: "3.1"
            nlu:
              - intent: greet
                examples: |
                  - hello
                  - hello world
                  - hello hello
              - intent: complain
                examples: |
                  - my order is broken
                  - refund is late
                  - where is my refund
            """
        ),
        encoding="utf-8",
    )
    files["rules"].write_text(
        textwrap.dedent(
            """\
            version: "3.1"
            rules:
              - rule: greet
                steps:
                  - intent: greet
                  - action: utter_greet
              - rule: complain
                steps:
                  - intent: complain
                  - action: utter_sorry
            """
        ),
        encoding="utf-8",
    )
    return files


@pytest.fixture(scope="module")
def agent(tiny_bert_dir, tmp_path_factory) -> Agent:
    from rasa.model_training import train

    root = tmp_path_factory.mktemp("sentiment_bot")
    files = write_bot(root, Path(tiny_bert_dir))
    result = train(
        domain=str(files["domain"]),
        config=str(files["config"]),
        training_files=[str(files["nlu"]), str(files["rules"])],
        output=str(root / "models"),
        fixed_model_name="bot",
    )
    assert result.code == 0 and result.model
    return Agent.load(result.model)


async def test_parse_result_carries_sentiment(agent):
    parsed = await agent.parse_message("my order is broken , I will sue you !!!")
    assert parsed["sentiment"]["label"] == "negative" and parsed["sentiment"]["intensity"] == "strong"
    assert "threat" in parsed["sentiment"]["signals"]
    assert {"entity": "sentiment", "value": "negative"}.items() <= next(
        e for e in parsed["entities"] if e["entity"] == "sentiment"
    ).items()


async def test_slot_fills_from_the_entity_through_the_tracker(agent):
    await agent.handle_text("hello world", sender_id="calm")
    await agent.handle_text("my order is broken , I will sue you !!!", sender_id="angry")
    angry = await agent.tracker_store.retrieve("angry")
    assert angry.get_slot("sentiment") == "negative"
    assert angry.latest_message.parse_data["sentiment"]["label"] == "negative"
    calm = await agent.tracker_store.retrieve("calm")
    assert calm.get_slot("sentiment") == calm.latest_message.parse_data["sentiment"]["label"]


@pytest.mark.parametrize("text", ["", "😀😀😀", "\x00\x01\x1b[31m", "a" * 10_000])
async def test_odd_messages_parse_without_errors(agent, text):
    parsed = await agent.parse_message(text)
    assert parsed["sentiment"]["label"] in ("positive", "neutral", "negative")
