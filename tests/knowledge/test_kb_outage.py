"""A PostgreSQL killed mid-test: the FAQ action answers politely, then recovers when it is back."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq
from actions.services import Services, use_services
from kefu.pgserver import EmbeddedPostgres, ensure_database, with_database
from knowledge.cache import AnswerCache
from knowledge.errors import StoreUnavailable
from knowledge.faq import FaqEntry, open_faq_store
from knowledge.service import KnowledgeService
from tests.actions.conftest import make_tracker

DOMAIN = {"responses": {"utter_faq_freeze_card": [{"text": "written answer"}], "utter_kb_unavailable": [{"text": "x"}]}}


@pytest.fixture
def own_server(tmp_path):
    if __import__("os").environ.get("KEFU_POSTGRES_URL"):
        pytest.skip("needs the embedded server to stop and restart it")
    server = EmbeddedPostgres(tmp_path / "pgdata")
    url = with_database(server.start(), "kb_outage")
    ensure_database(url)
    yield server, url
    server.stop()


async def test_store_killed_mid_conversation_then_recovers(own_server, kb_embedder):
    server, url = own_server
    store = open_faq_store(url, embedder=kb_embedder, timeout=2.0)
    store.upsert([FaqEntry("t-card-lost-zh", "zh", "银行卡丢了怎么办？", "请立即在手机银行挂失。")])
    service = KnowledgeService(faq=store, cache=AnswerCache(None))
    with use_services(Services(knowledge=service)):
        try:
            tracker = make_tracker("freeze_card", text="银行卡丢了怎么办")
            d = CollectingDispatcher()
            events = await ActionAnswerFaq().run(d, tracker, DOMAIN)
            assert d.messages[0]["text"] == "请立即在手机银行挂失。"
            assert events[0]["value"] == "faq"

            server.stop()  # PostgreSQL goes away mid-conversation
            with pytest.raises(StoreUnavailable):
                store.search("银行卡丢了怎么办")
            d = CollectingDispatcher()
            events = await ActionAnswerFaq().run(d, tracker, DOMAIN)
            assert d.messages[0]["response"] == "utter_faq_freeze_card"  # the written answer, no exception
            assert events[0]["value"] is None and events[1]["value"] == 0.0
            d = CollectingDispatcher()
            await ActionAnswerFaq().run(d, make_tracker("unknown_intent", text="银行卡丢了怎么办"), DOMAIN)
            assert d.messages[0]["response"] == "utter_kb_unavailable"

            server.start()  # back on the same data directory
            d = CollectingDispatcher()
            events = await ActionAnswerFaq().run(d, tracker, DOMAIN)
            assert d.messages[0]["text"] == "请立即在手机银行挂失。" and events[0]["value"] == "faq"
        finally:
            store.close()
