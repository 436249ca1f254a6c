"""action_similar_cases: the closest past case's resolution, or a polite 'nothing found' / 'unavailable'."""

from __future__ import annotations

import pytest

from actions.cases import ActionSimilarCases
from knowledge.cache import AnswerCache
from knowledge.cases import open_case_store
from knowledge.faq import open_faq_store
from knowledge.service import ANSWER_THRESHOLD, KnowledgeService
from tests.actions.conftest import make_tracker
from tests.knowledge.conftest_kb import kb_embedder, seeded_db_url  # noqa: F401 (fixtures)
from tests.servers import free_port


def service_for(url, embedder, timeout=3.0):
    return KnowledgeService(faq=open_faq_store(url, embedder=embedder, timeout=timeout),
                            cases=open_case_store(url, embedder=embedder, timeout=timeout), cache=AnswerCache(None))


@pytest.fixture
def use(request, services):
    def _use(service):
        services.knowledge = service
        request.addfinalizer(service.close)
        return service
    return _use


def slots(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def test_shares_the_resolution_of_a_similar_case(domain, dispatcher, seeded_db_url, kb_embedder, use):  # noqa: F811
    service = use(service_for(seeded_db_url, kb_embedder))
    tracker = make_tracker("complain", text="快递显示已签收但是我根本没收到东西")
    events = await ActionSimilarCases().run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    case = service.cases.get(message["ref"])
    assert message["source"] == "case" and case.resolution in message["text"]
    assert message["text"].startswith("我们之前处理过类似的情况")
    assert slots(events)["kb_source"] == "case" and slots(events)["kb_confidence"] >= ANSWER_THRESHOLD


async def test_english_case(domain, dispatcher, seeded_db_url, kb_embedder, use):  # noqa: F811
    use(service_for(seeded_db_url, kb_embedder))
    tracker = make_tracker("complain", text="someone charged my credit card and it wasn't me", slots={"language": "en"})
    await ActionSimilarCases().run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["text"].startswith("We handled a similar case before")


async def test_unrelated_question_finds_nothing(domain, dispatcher, seeded_db_url, kb_embedder, use):  # noqa: F811
    use(service_for(seeded_db_url, kb_embedder))
    events = await ActionSimilarCases().run(dispatcher, make_tracker("chitchat", text="给我讲个笑话吧"), domain)
    assert dispatcher.messages[0]["response"] == "utter_kb_no_answer"
    assert slots(events)["kb_confidence"] < ANSWER_THRESHOLD


async def test_case_store_down_is_polite(domain, dispatcher, kb_embedder, use):  # noqa: F811
    use(service_for(f"postgresql://kefu@127.0.0.1:{free_port()}/kefu", kb_embedder, timeout=1.0))
    events = await ActionSimilarCases().run(dispatcher, make_tracker("complain", text="卡被盗刷了"), domain)
    assert dispatcher.messages[0]["response"] == "utter_kb_unavailable"
    assert slots(events) == {"kb_source": None, "kb_confidence": 0.0}


async def test_empty_message(domain, dispatcher, kb_embedder, use):  # noqa: F811
    use(service_for(f"postgresql://kefu@127.0.0.1:{free_port()}/kefu", kb_embedder, timeout=1.0))
    await ActionSimilarCases().run(dispatcher, make_tracker("complain", text=" "), domain)
    assert dispatcher.messages[0]["response"] == "utter_kb_no_answer"
