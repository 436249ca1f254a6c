"""`kefu iterate`'s extra sources on real PostgreSQL: misrouted handoffs (real handoff ticket store,
transfers and console corrections) and approved knowledge-review suggestions (knowledge/review.py),
plus the review CLI's intent picking for proposals that only carry candidates."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from kefu.config import load_settings
from kefu.errors import BadInput
from kefu.pgserver import ensure_database, with_database
from ops import cli
from ops.iterate.loop import IterationConfig, collect
from ops.iterate.proposals import MAX_TEXT, Proposals
from ops.iterate.sources import MAX_KB_EXAMPLES, collect_knowledge, faq_candidates
from tests.servers import drop_database

DATA = Path(__file__).parent / "data" / "iterate"
ROUTING = load_settings({}).routing_file
ORDERS = sorted(["order_status", "shipping_time", "change_address", "cancel_order", "product_question", "ask_coupon",
                 "request_invoice"])
pytestmark = pytest.mark.timeout(600)


def _new_db(admin_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = with_database(admin_url, name)
    ensure_database(url)
    return name, url


@pytest.fixture
def tickets_db(pg_admin_url: str) -> Iterator[str]:
    from handoff.tickets import TicketStore

    name, url = _new_db(pg_admin_url, "kefu_itsrc")

    async def migrate() -> None:
        async with TicketStore(url) as store:
            await store.migrate()

    asyncio.run(migrate())
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


def _cfg(tmp_path: Path) -> IterationConfig:
    return IterationConfig(registry=tmp_path / "registry", config=DATA / "config.yml", data=[DATA / "nlu.yml"],
                           eval_file=DATA / "eval.yml", routing_file=ROUTING)


async def _handoff(url: str, text: str, transfers: list[str], *, correct: Optional[str] = None,
                   close: bool = True) -> str:
    """A ticket routed to the cards group, claimed, transferred by its agent, optionally corrected, closed."""
    from handoff.console.corrections import record_correction
    from handoff.tickets import TicketStore

    async with TicketStore(url) as store:
        ticket = await store.create(
            conversation_id=uuid.uuid4().hex, channel="rest", queue="cards", reason="specialist",
            reason_detail={"route": "specialist", "queue": "cards", "intent": "freeze_card", "confidence": 0.8},
            transcript=[{"role": "customer", "text": text, "ts": 0.0}, {"role": "bot", "text": "…", "ts": 1.0},
                        {"role": "customer", "text": "hello?", "ts": 2.0}],
        )
        await store.claim(ticket.id, "alice")
        for queue in transfers:
            await store.transfer(ticket.id, queue, "alice")
            await store.claim(ticket.id, "bob")
        if correct:
            await record_correction(store._pool, ticket.id, correct, "bob")
        if close:
            await store.close_ticket(ticket.id, "bob", "resolved")
        return ticket.id


def test_misrouted_handoffs_are_proposed_for_the_final_group(tickets_db: str, tmp_path: Path) -> None:
    async def make() -> dict[str, str]:
        return {
            "loans": await _handoff(tickets_db, "I want a mortgage for my flat", ["loans"]),
            "orders": await _handoff(tickets_db, "where is my parcel", ["orders"]),
            "via_general": await _handoff(tickets_db, "how much can I borrow", ["general", "loans"]),
            "senior": await _handoff(tickets_db, "this is ridiculous", ["senior"]),
            "back": await _handoff(tickets_db, "card question after all", ["loans", "cards"]),
            "corrected": await _handoff(tickets_db, "what is my transfer limit", ["orders"], correct="transfer_limit"),
            "untransferred": await _handoff(tickets_db, "freeze my card", []),
            "open": await _handoff(tickets_db, "loan for a car", ["loans"], close=False),
            "markup": await _handoff(tickets_db, "[mortgage](loan_info) please", ["loans"]),
            "oversized": await _handoff(tickets_db, "loan " * 200, ["loans"]),
            "control": await _handoff(tickets_db, "loan\x07 now", ["loans"]),
        }

    ids = asyncio.run(make())
    cfg = _cfg(tmp_path)
    proposals = Proposals(cfg.registry)
    added = collect(cfg, proposals, 0.0, tickets_db)
    by_ref = {p["ref"]: p for p in added}
    assert sorted(by_ref) == sorted(ids[k] for k in ("loans", "orders", "via_general", "corrected"))
    assert len(added) == 4  # the corrected and transferred ticket is proposed once
    loans = by_ref[ids["loans"]]
    assert (loans["text"], loans["intent"], loans["source"]) == ("I want a mortgage for my flat", "loan_info",
                                                                  "misrouted_handoff")
    assert "candidates" not in loans
    orders = by_ref[ids["orders"]]
    assert orders["intent"] is None and orders["candidates"] == ORDERS and orders["source"] == "misrouted_handoff"
    assert by_ref[ids["via_general"]]["intent"] == "loan_info"  # routed cards, ended in loans via general
    corrected = by_ref[ids["corrected"]]
    assert (corrected["intent"], corrected["source"]) == ("transfer_limit", "agent_correction")
    # nothing twice; nothing closed before `since`
    assert collect(cfg, proposals, 0.0, tickets_db) == []
    assert collect(cfg, Proposals(tmp_path / "other"), time.time() + 3600, tickets_db) == []
    # without a routing file only the corrections are collected (the old behaviour)
    bare = dataclasses.replace(cfg, routing_file=None)
    assert [p["source"] for p in collect(bare, Proposals(tmp_path / "bare"), 0.0, tickets_db)] == ["agent_correction"]


def test_review_cli_picks_intents_for_candidate_proposals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    reg = tmp_path / "registry"
    props = Proposals(reg)
    single = props.add("I want a mortgage", None, "misrouted_handoff", "t1", candidates=["loan_info"])
    multi = props.add("where is my parcel", None, "misrouted_handoff", "t2", candidates=ORDERS)
    known = props.add("hello there", "greet", "agent_correction", "t3")
    assert single["intent"] == "loan_info" and "candidates" not in single
    assert multi["intent"] is None and multi["candidates"] == ORDERS
    assert props.add("Where is my  parcel", None, "knowledge_review", "kb", candidates=ORDERS) is None  # dedupe
    review = ["iterate", "review", "--registry", str(reg)]

    assert cli.main(review) == 0
    listing = capsys.readouterr().out
    assert "misrouted_handoff t2" in listing and "[pick: " + ", ".join(ORDERS) + "]" in listing

    # a candidate-only proposal cannot be accepted without an intent, and nothing else changes either
    assert cli.main([*review, "--accept", str(multi["id"]), "--accept", str(known["id"])]) == 1
    assert f"proposal #{multi['id']} has no intent" in capsys.readouterr().err
    assert {p["status"] for p in props.all()} == {"pending"}

    # --accept-all takes the ones with an intent and says which still need a pick
    assert cli.main([*review, "--accept-all"]) == 0
    assert "1 pending proposal(s) need an intent" in capsys.readouterr().out
    status = {p["id"]: p["status"] for p in props.all()}
    assert status == {single["id"]: "accepted", multi["id"]: "pending", known["id"]: "accepted"}

    bad_intents = {"no_such_intent": "not in the dialogue domain", "drop table; --": "letters, digits",
                   "x" * 5000: "letters, digits", "": "letters, digits", "意图": "not in the dialogue domain"}
    for bad, message in bad_intents.items():
        assert cli.main([*review, "--accept", str(multi["id"]), "--intent", bad]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err) < 400
    assert cli.main([*review, "--intent", "shipping_time"]) == 1  # an intent needs its one --accept
    assert cli.main([*review, "--accept-all", "--accept", "2", "--intent", "shipping_time"]) == 1
    assert "exactly one --accept" in capsys.readouterr().err
    assert cli.main([*review, "--reject", str(multi["id"]), "--accept", "99", "--intent", "shipping_time"]) == 1
    with pytest.raises(SystemExit):
        cli.main([*review, "--accept", "two"])
    assert props.all()[1]["status"] == "pending"

    # the designer's pick (any domain intent; the candidates are a suggestion) is trained on
    assert cli.main([*review, "--accept", str(multi["id"]), "--intent", "shipping_time"]) == 0
    item = next(p for p in props.all() if p["id"] == multi["id"])
    assert (item["status"], item["intent"]) == ("accepted", "shipping_time")
    nlu = (reg / "accepted_nlu.yml").read_text(encoding="utf-8")
    assert "intent: shipping_time" in nlu and "where is my parcel" in nlu and "intent: loan_info" in nlu


def test_proposal_texts_that_cannot_be_training_data_are_refused(tmp_path: Path) -> None:
    props = Proposals(tmp_path)
    hostile = ["[card](bank) lost", 'I lost [it]{"entity": "card"}', "nul\x00byte", "bell\x07", "x" * (MAX_TEXT + 1),
               "", "   ", None]
    for text in hostile:
        with pytest.raises(BadInput):
            props.add(text, "greet", "test")
    for candidates in ([], ["ok", "drop table"], [f"i{n}" for n in range(40)]):
        with pytest.raises(BadInput):
            props.add("fine text", None, "test", candidates=candidates)
    kept = props.add("multi\nline  [brackets] are fine", "greet", "test")
    assert kept["text"] == "multi line [brackets] are fine"
    assert props.all() == [kept]


# --- knowledge review ---------------------------------------------------------------------------


@pytest.fixture
def kb(pg_admin_url: str) -> Iterator[tuple[Any, Any, str]]:
    """A fresh knowledge database with the real ticket/suggestion and FAQ stores (real encoder)."""
    from knowledge.embed import DEFAULT_MODEL, Embedder
    from knowledge.faq import open_faq_store
    from knowledge.tickets import TicketStore

    if not (DEFAULT_MODEL / "config.json").is_file():
        pytest.skip(f"encoder not converted at {DEFAULT_MODEL}; run `make model`")
    name, url = _new_db(pg_admin_url, "kefu_itkb")
    store, faq = TicketStore(url), open_faq_store(url, embedder=Embedder(DEFAULT_MODEL))
    try:
        yield store, faq, url
    finally:
        store.close()
        faq.close()
        drop_database(pg_admin_url, name)


def _suggestion(question: str, alternatives: list[str], ticket_ids: list[str]) -> dict[str, Any]:
    return {"language": "en", "question": question, "alternatives": alternatives, "answer": "See the app.",
            "answer_source": "ticket resolutions", "ticket_ids": ticket_ids, "size": len(ticket_ids),
            "cohesion": 0.9, "params": {"algorithm": "DBSCAN"}}


def test_approved_knowledge_review_items_are_proposed(kb: tuple[Any, Any, str], tmp_path: Path) -> None:
    from knowledge.cache import AnswerCache
    from knowledge.review import publish, review
    from knowledge.tickets import Ticket

    store, faq, url = kb
    members = [Ticket(f"T{n}", q, "en") for n, q in enumerate(
        ["How do I pay with my watch?", "how do i pay with my watch?", "can my watch pay at shops",
         "[watch](card) pay", "watch " * 100, *[f"watch payment question {n}" for n in range(12)]])]
    store.import_tickets([*members, Ticket("M1", "loan for a holiday house", "en")])
    approved, rejected, mapped = store.replace_pending([
        _suggestion("pay with my watch", ["can my watch pay at shops", "How do I pay with my watch?"],
                    [t.id for t in members]),
        _suggestion("student discount please", ["students get cheaper cards?"], ["T1"]),
        _suggestion("mortgage for a second home", [], ["M1"]),
    ])
    suggestions = {s["id"]: s for s in store.suggestions()}
    cache = AnswerCache(None)
    since = time.time() - 1
    publish(suggestions[approved], faq, cache, store)
    args = argparse.Namespace(list=False, approve=None, reject=rejected, question=None, answer=None)
    assert review(store, load_settings({}), cache, args, faq=faq) == 0
    fid = publish(suggestions[mapped], faq, cache, store)
    faq.upsert([dataclasses.replace(faq.get(fid), category="loans")], note="test: a designer files it under loans")
    assert {s["id"]: s["status"] for s in store.suggestions(None)} == {
        approved: "approved", rejected: "rejected", mapped: "approved"}

    cfg = _cfg(tmp_path)
    proposals = Proposals(cfg.registry)
    added = collect(cfg, proposals, since, None, url)
    assert all(p["source"] == "knowledge_review" for p in added)
    refs = {p["ref"] for p in added}
    assert refs == {f"kb_suggestion:{approved}", f"kb_suggestion:{mapped}"}  # the rejected one is not proposed
    watch = [p for p in added if p["ref"] == f"kb_suggestion:{approved}"]
    texts = [p["text"] for p in watch]
    assert texts[:3] == ["pay with my watch", "can my watch pay at shops", "How do I pay with my watch?"]
    assert len(texts) == len(set(t.lower() for t in texts)) <= MAX_KB_EXAMPLES  # deduplicated, capped
    assert not any("[" in t or len(t) > MAX_TEXT for t in texts)  # hostile / oversized members skipped
    from kefu.routing.settings import load_routing

    everything = sorted(load_routing(ROUTING).faq_intents)
    assert all(p["intent"] is None and p["candidates"] == everything for p in watch)  # from-tickets: no group
    mortgage = [(p["text"], p["intent"]) for p in added if p["ref"] == f"kb_suggestion:{mapped}"]
    # category loans → its one FAQ intent
    assert mortgage == [("mortgage for a second home", "loan_info"), ("loan for a holiday house", "loan_info")]
    assert faq_candidates(load_routing(ROUTING), "cards") == ["apply_credit_card", "freeze_card", "unfreeze_card"]
    assert collect_knowledge(url, since, proposals, ROUTING) == []  # nothing twice
    assert collect_knowledge(url, time.time() + 3600, Proposals(tmp_path / "later"), ROUTING) == []
    assert json.loads((cfg.registry / "proposals.json").read_text(encoding="utf-8")) == proposals.all()


def test_knowledge_source_without_tables_is_empty(tickets_db: str, tmp_path: Path) -> None:
    """A database where `kefu kb` never ran has no suggestions: nothing to propose, no error."""
    assert collect_knowledge(tickets_db, 0.0, Proposals(tmp_path), ROUTING) == []
