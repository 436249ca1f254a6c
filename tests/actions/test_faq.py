"""action_answer_faq: store-backed answers with source + confidence, written responses as the fallback."""

from __future__ import annotations

import pytest

from actions.faq import ActionAnswerFaq, response_for
from knowledge.cache import AnswerCache
from knowledge.cases import open_case_store
from knowledge.faq import open_faq_store
from knowledge.graph import open_graph
from knowledge.graph.qa import GraphQA
from knowledge.service import ANSWER_THRESHOLD, KnowledgeService
from tests.actions.conftest import make_tracker
from tests.knowledge.conftest_graph import falkordb_server, seeded_graph_url  # noqa: F401 (fixtures)
from tests.knowledge.conftest_kb import kb_embedder, seeded_db_url  # noqa: F401 (fixtures)
from tests.servers import free_port

FAQ_INTENTS = [
    "freeze_card", "unfreeze_card", "check_balance", "transfer_limit", "ask_fees", "loan_info",
    "apply_credit_card", "open_account", "reset_password", "shipping_time", "refund_status",
    "request_invoice", "change_address", "cancel_order", "product_question", "ask_coupon",
]


@pytest.fixture
def kb_service(seeded_db_url, kb_embedder, seeded_graph_url, services):  # noqa: F811
    """The seed FAQ, case library and product graph behind the action."""
    service = KnowledgeService(faq=open_faq_store(seeded_db_url, embedder=kb_embedder),
                               cases=open_case_store(seeded_db_url, embedder=kb_embedder), cache=AnswerCache(None))
    services.knowledge = service
    services.graph = GraphQA(open_graph(seeded_graph_url))
    yield service
    service.close()


@pytest.fixture
def dead_service(kb_embedder, services):  # noqa: F811
    """A knowledge service whose PostgreSQL does not exist (nothing listens on the port)."""
    url = f"postgresql://kefu@127.0.0.1:{free_port()}/kefu"
    service = KnowledgeService(faq=open_faq_store(url, embedder=kb_embedder, timeout=1.0),
                               cases=open_case_store(url, embedder=kb_embedder, timeout=1.0), cache=AnswerCache(None))
    services.knowledge = service
    yield service
    service.close()


def slots(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_every_faq_intent_has_a_bilingual_answer(domain):
    for intent in FAQ_INTENTS:
        name = response_for(intent, domain["responses"])
        assert name == f"utter_faq_{intent}"
        variants = domain["responses"][name]
        assert [v.get("condition", [{}])[0].get("value") for v in variants] == ["zh", None]
        assert all(v["text"].strip() for v in variants)


async def test_answers_from_the_store_with_source_and_confidence(domain, dispatcher, kb_service):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("freeze_card", text="卡丢了怎么办"), domain)
    [message] = dispatcher.messages
    assert message["text"] == kb_service.faq.get("card-lost-zh").answer
    assert message["source"] == "faq" and message["ref"] == "card-lost-zh"
    assert slots(events)["kb_source"] == "faq" and slots(events)["kb_confidence"] >= ANSWER_THRESHOLD


async def test_answers_in_english(domain, dispatcher, kb_service):
    tracker = make_tracker("shipping_time", text="how much is delivery", slots={"language": "en"})
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["ref"] == "ship-fee-en"


async def test_weak_match_keeps_the_written_response(domain, dispatcher, kb_service):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("ask_fees", text="ask_fees"), domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_faq_ask_fees"]
    assert slots(events)["kb_confidence"] < ANSWER_THRESHOLD


async def test_nothing_found_says_so_and_leaves_it_to_routing(domain, dispatcher, kb_service):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("out_of_scope", text="今天天气怎么样"), domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_kb_no_answer"]
    assert slots(events)["kb_source"] is None and slots(events)["kb_confidence"] < ANSWER_THRESHOLD


async def test_an_unanswerable_question_falls_through_like_a_low_score(domain, dispatcher, kb_service):
    """No FAQ entry covers checkbooks: the top hit's calibrated decision abstains (issue 18), so the
    action goes on exactly as for a weak match (case library, then the written response). The case
    library still thresholds its raw score, and today a past order case answers at 0.66."""
    text = "How do I order a checkbook?"
    faq = kb_service.faq_answers(text, "en")
    assert faq and faq[0].answerable is False
    cases = kb_service.similar_cases(text, "en")
    tracker = make_tracker("check_balance", text=text, slots={"language": "en"})
    events = await ActionAnswerFaq().run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    assert message.get("source") != "faq" and slots(events)["kb_source"] != "faq"
    if cases and cases[0].confidence >= ANSWER_THRESHOLD:
        assert message["source"] == "case" and slots(events)["kb_source"] == "case"
    else:
        assert message["response"] == "utter_faq_check_balance" and slots(events)["kb_source"] is None


async def test_the_graph_answers_a_product_fact(domain, dispatcher, kb_service):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("ask_fees", text="白金卡年费多少"), domain)
    [message] = dispatcher.messages
    assert message["source"] == "graph" and "2,000元/年" in message["text"]
    assert slots(events)["kb_source"] == "graph" and slots(events)["kb_confidence"] >= ANSWER_THRESHOLD


@pytest.mark.parametrize(
    ("text", "language", "intro"),
    [("快递显示已签收但是我根本没收到东西", "zh", "我们之前处理过类似的情况"),
     ("My new air conditioner is leaking", "en", "We handled a similar case before")],
)
async def test_a_question_only_a_past_case_answers(domain, dispatcher, kb_service, text, language, intro):
    faq = kb_service.faq_answers(text, language)
    assert not faq or faq[0].confidence < ANSWER_THRESHOLD  # the FAQ alone would not answer this
    tracker = make_tracker("product_question", text=text, slots={"language": language})
    events = await ActionAnswerFaq().run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    case = kb_service.cases.get(message["ref"])  # the message names the case it came from
    assert message["source"] == "case" and message["text"].startswith(intro) and case.resolution in message["text"]
    assert slots(events)["kb_source"] == "case" and slots(events)["kb_confidence"] >= ANSWER_THRESHOLD


async def test_store_down_gives_the_written_answer_or_a_polite_apology(domain, dispatcher, dead_service):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("ask_fees", text="信用卡年费多少"), domain)
    assert dispatcher.messages[0]["response"] == "utter_faq_ask_fees"
    assert slots(events) == {"kb_source": None, "kb_confidence": 0.0}
    dispatcher.messages.clear()
    await ActionAnswerFaq().run(dispatcher, make_tracker("no_such_intent", text="信用卡年费多少"), domain)
    assert dispatcher.messages[0]["response"] == "utter_kb_unavailable"
    assert "utter_kb_unavailable" in domain["responses"] and "utter_kb_no_answer" in domain["responses"]


async def test_small_talk_inside_a_form_gets_its_own_response(domain, dispatcher):
    assert await ActionAnswerFaq().run(dispatcher, make_tracker("bot_challenge"), domain) == []
    assert dispatcher.messages[0]["response"] == "utter_iamabot"


@pytest.mark.parametrize("text", ["", "   ", "'; DROP TABLE kb_faq; --", "\x00\x01" * 10, "退款" * 20_000])
async def test_hostile_or_empty_messages_never_raise(domain, dispatcher, kb_service, text):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("refund_status", text=text), domain)
    assert len(dispatcher.messages) == 1 and "kb_confidence" in slots(events)
