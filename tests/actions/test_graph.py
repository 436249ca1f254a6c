"""action_answer_graph with real rasa-sdk trackers against a real FalkorDB (seed graph)."""

from __future__ import annotations

from typing import Iterator

import pytest
from rasa_sdk.events import SlotSet

from actions.graph import ActionAnswerGraph
from actions.services import Services
from knowledge.graph import load_graph, open_graph
from knowledge.graph.qa import GraphQA
from tests.actions.conftest import make_tracker
from tests.knowledge.conftest_graph import GRAPH_DIR, falkordb_server, own_falkordb, seeded_graph_url  # noqa: F401


@pytest.fixture
def seeded_qa(seeded_graph_url: str, services: Services) -> Iterator[GraphQA]:  # noqa: F811
    services.graph = GraphQA(open_graph(seeded_graph_url))
    yield services.graph


def slots(events: list) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def test_platinum_annual_fee_zh(seeded_qa, dispatcher, domain) -> None:
    tracker = make_tracker("ask_fees", "白金卡年费多少", slots={"language": "zh"})
    events = await ActionAnswerGraph().run(dispatcher, tracker, domain)
    assert "2,000元/年" in dispatcher.messages[0]["text"]
    assert dispatcher.messages[0]["source"] == "graph"
    assert slots(events) == {"kb_source": "graph", "kb_confidence": 0.92}


async def test_cards_without_foreign_fee_en(seeded_qa, dispatcher, domain) -> None:
    tracker = make_tracker("ask_fees", "which cards have no foreign transaction fee", slots={"language": "en"})
    events = await ActionAnswerGraph().run(dispatcher, tracker, domain)
    text = dispatcher.messages[0]["text"]
    assert "Platinum credit card" in text and "Travel credit card" in text
    assert slots(events)["kb_confidence"] >= 0.9


async def test_documents_to_open_an_account(seeded_qa, dispatcher, domain) -> None:
    tracker = make_tracker("open_account", "开户需要什么材料")
    await ActionAnswerGraph().run(dispatcher, tracker, domain)
    assert "本人居民身份证" in dispatcher.messages[0]["text"]


async def test_product_slot_fills_in_the_product(seeded_qa, dispatcher, domain) -> None:
    tracker = make_tracker("ask_fees", "年费多少", slots={"product": "金卡"})
    await ActionAnswerGraph().run(dispatcher, tracker, domain)
    assert "金卡信用卡的年费" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize("text", ["今天天气怎么样", "", "x" * 50_000, '"}) MATCH (n) DETACH DELETE n //'])
async def test_nothing_found_says_so_and_leaves_it_to_routing(seeded_qa, dispatcher, domain, text: str) -> None:
    before = seeded_qa.store.counts()
    events = await ActionAnswerGraph().run(dispatcher, make_tracker("out_of_scope", text), domain)
    assert dispatcher.messages[0]["response"] == "utter_kb_graph_no_answer"
    assert SlotSet("kb_confidence", 0.0) in events
    assert seeded_qa.store.counts() == before


async def test_store_down_degrades_politely_then_recovers(own_falkordb, services, dispatcher, domain) -> None:  # noqa: F811
    load_graph(own_falkordb.url, GRAPH_DIR)
    services.graph = GraphQA(open_graph(own_falkordb.url))
    own_falkordb.kill()
    events = await ActionAnswerGraph().run(dispatcher, make_tracker("ask_fees", "白金卡年费多少"), domain)
    assert dispatcher.messages[-1]["response"] == "utter_kb_graph_unavailable"
    assert slots(events) == {"kb_source": "graph", "kb_confidence": 0.0}
    own_falkordb.start()
    load_graph(own_falkordb.url, GRAPH_DIR)
    await ActionAnswerGraph().run(dispatcher, make_tracker("ask_fees", "白金卡年费多少"), domain)
    assert "2,000元/年" in dispatcher.messages[-1]["text"]


def test_responses_exist_in_both_languages(domain) -> None:
    for name in ("utter_kb_graph_no_answer", "utter_kb_graph_unavailable"):
        variants = domain["responses"][name]
        assert len(variants) == 2 and variants[0]["condition"][0]["value"] == "zh"
