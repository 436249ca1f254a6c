"""The handoff ticket store against a real PostgreSQL (embedded, or KEFU_POSTGRES_URL)."""

from __future__ import annotations

import asyncio

import pytest

from handoff.tickets import ActiveTicketExists, AlreadyClaimed, TicketClosed, TicketStore, routing_queues
from kefu.errors import BadInput, NotFound, StoreUnavailable
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import login
from tests.servers import free_port


def fields(conversation: str = "c1", **over):
    base = dict(
        conversation_id=conversation,
        channel="rest",
        queue="general",
        priority=10,
        reason="explicit_request",
        reason_detail={"intent": "ask_human", "confidence": 0.97, "thresholds": {"auto": 0.9}},
        language="en",
        intent_ranking=[{"name": "ask_human", "confidence": 0.97}],
        sentiment_trend=[{"label": "neutral", "score": 0.0}],
        transcript=[{"role": "customer", "text": "agent please", "ts": 1.0}],
        suggestions=[{"title": "opening hours", "source": "faq"}],
    )
    base.update(over)
    return base


async def test_create_and_get_round_trip(store: TicketStore):
    ticket = await store.create(**fields())
    again = await store.get(ticket.id)
    assert again == ticket
    assert len(ticket.id) == 32 and ticket.status == "waiting" and ticket.agent is None
    assert ticket.reason_detail["thresholds"] == {"auto": 0.9}
    assert ticket.transcript[0]["text"] == "agent please"
    assert [m["role"] for m in await store.messages(ticket.id)] == ["system"]


async def test_one_active_ticket_per_conversation_even_when_created_concurrently(store: TicketStore):
    results = await asyncio.gather(*(store.create(**fields("same")) for _ in range(5)), return_exceptions=True)
    created = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ActiveTicketExists)]
    assert len(created) == 1 and len(refused) == 4
    assert refused[0].ticket_id == created[0].id
    # the refused transactions left nothing behind: one ticket, one opening message
    assert len(await store.list_open()) == 1
    assert len(await store.messages(created[0].id)) == 1
    assert (await store.active_for_conversation("same")).id == created[0].id


async def test_list_open_orders_by_priority_then_age_and_filters_queues(store: TicketStore):
    low = await store.create(**fields("a", priority=1))
    high = await store.create(**fields("b", priority=50, queue="senior", reason="angry"))
    low2 = await store.create(**fields("c", priority=1))
    assert [t.id for t in await store.list_open()] == [high.id, low.id, low2.id]
    assert [t.id for t in await store.list_open(["general"])] == [low.id, low2.id]
    assert await store.list_open([]) == []


async def test_queue_position_counts_only_waiting_tickets_ahead_in_the_same_queue(store: TicketStore):
    first = await store.create(**fields("a"))
    second = await store.create(**fields("b"))
    await store.create(**fields("x", queue="cards", reason="specialist"))
    urgent = await store.create(**fields("c", priority=90))
    assert await store.queue_position(urgent.id) == 1
    assert await store.queue_position(first.id) == 2
    assert await store.queue_position(second.id) == 3
    await store.claim(urgent.id, "alice")
    assert await store.queue_position(urgent.id) == 0
    assert await store.queue_position(second.id) == 2
    assert await store.waiting_count("general") == 2


async def test_exactly_one_of_concurrent_claims_wins(store: TicketStore):
    ticket = await store.create(**fields())
    agents = [f"agent{i}" for i in range(6)]
    results = await asyncio.gather(*(store.claim(ticket.id, a) for a in agents), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyClaimed) for r in results if isinstance(r, Exception))
    current = await store.get(ticket.id)
    assert current.status == "assigned" and current.agent == winners[0].agent and current.claimed_at
    # the winner claiming again is harmless; anyone else is refused
    assert (await store.claim(ticket.id, current.agent)).agent == current.agent
    other = next(a for a in agents if a != current.agent)
    with pytest.raises(AlreadyClaimed):
        await store.claim(ticket.id, other)


async def test_transfer_returns_the_ticket_to_waiting_in_another_queue(store: TicketStore):
    ticket = await store.create(**fields())
    await store.claim(ticket.id, "alice")
    moved = await store.transfer(ticket.id, "cards", by="alice")
    assert (moved.queue, moved.status, moved.agent, moved.claimed_at) == ("cards", "waiting", None, None)
    assert (await store.claim(ticket.id, "bob")).agent == "bob"
    texts = [m["text"] for m in await store.messages(ticket.id)]
    assert "transferred to cards by alice" in texts


console = console_fixtures.console
rasa_api = console_fixtures.rasa_api


def test_the_transfer_queues_are_routings():
    assert routing_queues() == ("accounts", "cards", "general", "loans", "orders", "payments", "refunds", "senior")


async def test_transfer_to_a_queue_routing_does_not_define_is_refused(console, store: TicketStore):
    """A ticket moved to a made-up queue would wait where no agent works: 400 naming the real queues."""
    alice = login(console, "alice")
    ticket = await store.create(**fields("xfer-unknown-queue", queue="cards"))
    assert alice.post(f"/api/tickets/{ticket.id}/claim").status_code == 200
    resp = alice.post(f"/api/tickets/{ticket.id}/transfer", {"queue": "vip_lounge"})
    assert resp.status_code == 400 and "general, loans" in resp.json()["detail"], resp.text
    unchanged = await store.get(ticket.id)
    assert (unchanged.queue, unchanged.status, unchanged.agent) == ("cards", "assigned", "alice")
    assert alice.post(f"/api/tickets/{ticket.id}/transfer", {"queue": "payments"}).status_code == 200


async def test_messages_close_and_rating(store: TicketStore):
    ticket = await store.create(**fields("conv"))
    await store.claim(ticket.id, "alice")
    first = await store.add_message(ticket.id, "customer", "你好，我的卡被吞了")
    second = await store.add_message(ticket.id, "agent", "I'll check that for you")
    assert second > first
    later = await store.messages(ticket.id, after_id=first)
    assert [(m["role"], m["text"]) for m in later] == [("agent", "I'll check that for you")]
    assert await store.rate("conv", 5) is None  # nothing closed yet
    closed = await store.close_ticket(ticket.id, "alice", "resolved")
    assert closed.status == "closed" and closed.disposition == "resolved" and closed.closed_at
    assert await store.active_for_conversation("conv") is None
    assert (await store.rate("conv", 4)).rating == 4
    assert await store.recent_handling_seconds("general") >= 0
    with pytest.raises(TicketClosed):
        await store.close_ticket(ticket.id, "alice", "resolved")
    with pytest.raises(TicketClosed):
        await store.transfer(ticket.id, "cards", by="alice")
    with pytest.raises(AlreadyClaimed):
        await store.claim(ticket.id, "bob")
    # a new handoff in the same conversation is allowed once the old ticket is closed
    assert (await store.create(**fields("conv"))).id != ticket.id


async def test_rating_goes_to_the_most_recently_closed_ticket(store: TicketStore):
    old = await store.create(**fields("conv"))
    await store.close_ticket(old.id, "alice", "resolved")
    new = await store.create(**fields("conv"))
    await store.close_ticket(new.id, "bob", "resolved")
    assert (await store.rate("conv", 2)).id == new.id
    assert (await store.get(old.id)).rating is None


async def test_callback_tickets_are_not_open_but_listed_as_callbacks(store: TicketStore):
    ticket = await store.create(**fields(status="callback", reason="callback"))
    assert await store.list_open() == []
    assert [t.id for t in await store.list_callbacks()] == [ticket.id]
    assert await store.queue_position(ticket.id) == 0
    assert (await store.close_ticket(ticket.id, "carol", "called_back")).status == "closed"


@pytest.mark.parametrize(
    "bad",
    [
        {"conversation_id": ""},
        {"conversation_id": None},
        {"conversation_id": "x" * 256},
        {"conversation_id": "a\nb"},
        {"conversation_id": 42},
        {"queue": "Robert'); DROP TABLE handoff_tickets;--"},
        {"queue": ""},
        {"reason": "because"},
        {"language": "fr"},
        {"status": "closed"},
        {"priority": -1},
        {"priority": True},
        {"priority": "9"},
        {"reason_detail": ["not", "a", "dict"]},
        {"reason_detail": {"x": float("nan")}},
        {"reason_detail": {"x": object()}},
        {"transcript": [{"text": "x" * 300_000}]},
        {"transcript": [{}] * 201},
        {"surprise": 1},
    ],
)
async def test_create_rejects_bad_fields_and_writes_nothing(store: TicketStore, bad):
    with pytest.raises(BadInput):
        await store.create(**fields(**bad))
    assert await store.list_open() == [] and await store.list_callbacks() == []


async def test_hostile_text_is_stored_literally_and_nul_bytes_are_dropped(store: TicketStore):
    hostile = "'; DELETE FROM handoff_tickets; -- <script>alert(1)</script> \u202e"
    transcript = [{"role": "customer", "text": hostile + "\x00"}]
    ticket = await store.create(**fields(conversation_id="c\x00x", transcript=transcript))
    assert ticket.conversation_id == "cx"
    assert ticket.transcript[0]["text"] == hostile
    message_id = await store.add_message(ticket.id, "customer", hostile + "\x00")
    assert (await store.messages(ticket.id, after_id=message_id - 1))[0]["text"] == hostile
    assert len(await store.list_open()) == 1


@pytest.mark.parametrize("text", ["", "   ", None, 5, "x" * 8001])
async def test_add_message_rejects_empty_oversized_and_non_text(store: TicketStore, text):
    ticket = await store.create(**fields())
    with pytest.raises(BadInput):
        await store.add_message(ticket.id, "customer", text)
    assert len(await store.messages(ticket.id)) == 1


async def test_unknown_ids_roles_and_ratings(store: TicketStore):
    ticket = await store.create(**fields("conv"))
    for bad_id in ["0" * 32, "nope", "", None, "' OR 1=1 --"]:
        with pytest.raises(NotFound):
            await store.get(bad_id)
        with pytest.raises(NotFound):
            await store.claim(bad_id, "alice")
        with pytest.raises(NotFound):
            await store.add_message(bad_id, "agent", "hi")
    with pytest.raises(BadInput):
        await store.add_message(ticket.id, "admin", "hi")
    for rating in [0, 6, "5", 4.5, True]:
        with pytest.raises(BadInput):
            await store.rate("conv", rating)
    with pytest.raises(BadInput):
        await store.claim(ticket.id, "")
    with pytest.raises(BadInput):
        await store.messages(ticket.id, after_id=-1)


async def test_migrate_is_idempotent_and_safe_concurrently(tickets_url: str):
    stores = [TicketStore(tickets_url) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        await asyncio.gather(*(s.migrate() for s in stores))
        await stores[0].migrate()
    finally:
        for s in stores:
            await s.close()


async def test_unreachable_server_is_store_unavailable_and_repr_hides_password():
    store = TicketStore(f"postgresql://kefu:s3cret@127.0.0.1:{free_port()}/kefu", timeout=1.0)
    assert "s3cret" not in repr(store)
    with pytest.raises(StoreUnavailable) as info:
        await store.open()
    assert "s3cret" not in str(info.value)
    await store.close()
    with pytest.raises(BadInput):
        TicketStore("mysql://x/y")
