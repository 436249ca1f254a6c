"""Claim (race), transfer, chat, close and bad input on a real console process + real ticket store.

Rasa's HTTP API is served by `RasaApiServer` (a local server for the endpoint subset the
console calls); the browser and full-stack tests in tests/e2e use the real Rasa server.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import websocket

from handoff.tickets import TicketStore
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import login

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]


async def new_ticket(store: TicketStore, queue: str = "cards", conversation: str = "", **extra) -> str:
    fields = {"conversation_id": conversation or f"c-{time.monotonic_ns()}", "channel": "rest", "queue": queue,
              "reason": "specialist", "priority": 10, "language": "zh"}
    fields.update(extra)
    return (await store.create(**fields)).id


async def test_concurrent_claims_exactly_one_wins(console, store):
    alice, bob = login(console, "alice"), login(console, "bob")
    ids = [await new_ticket(store) for _ in range(15)]
    for ticket_id in ids:
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}

        def claim(name, client, ticket_id=ticket_id, barrier=barrier, results=results):
            barrier.wait()
            results[name] = client.post(f"/api/tickets/{ticket_id}/claim").status_code

        pairs = (("alice", alice), ("bob", bob))
        threads = [threading.Thread(target=claim, args=pair) for pair in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [200, 409], results
        winner = next(name for name, code in results.items() if code == 200)
        assert (await store.get(ticket_id)).agent == winner


async def test_roles_decide_who_may_claim_send_and_close(console, store):
    alice, bob, sara, vera = (login(console, n) for n in ("alice", "bob", "sara", "vera"))
    senior = await new_ticket(store, queue="senior", reason="angry", priority=100)
    assert alice.post(f"/api/tickets/{senior}/claim").status_code == 404, "not her queue: invisible"
    assert alice.get(f"/api/tickets/{senior}").status_code == 404
    assert sara.post(f"/api/tickets/{senior}/claim").status_code == 200
    assert bob.post(f"/api/tickets/{senior}/messages", {"text": "hi"}).status_code == 404
    cards = await new_ticket(store)
    assert alice.post(f"/api/tickets/{cards}/claim").status_code == 200
    assert bob.post(f"/api/tickets/{cards}/messages", {"text": "I am not the assignee"}).status_code == 403
    assert bob.post(f"/api/tickets/{cards}/close", {"disposition": "resolved"}).status_code == 403
    assert vera.post(f"/api/tickets/{cards}/messages", {"text": "supervisors do not chat"}).status_code == 403
    assert vera.post(f"/api/tickets/{cards}/close", {"disposition": "escalated"}).status_code == 200


async def test_agent_reply_goes_to_rasa_with_output_channel_latest(console, store, rasa_api):
    alice = login(console, "alice")
    ticket_id = await new_ticket(store, conversation="conv-reply")
    alice.post(f"/api/tickets/{ticket_id}/claim")
    resp = alice.post(f"/api/tickets/{ticket_id}/messages", {"text": "您好，我是客服小王"})
    assert resp.status_code == 201
    call = [c for c in rasa_api.calls if c["conversation"] == "conv-reply"][-1]
    assert call["path"] == "/conversations/conv-reply/tracker/events"
    assert call["query"]["output_channel"] == "latest" and call["query"]["execute_side_effects"] == "true"
    assert call["body"][0]["event"] == "bot" and call["body"][0]["text"] == "您好，我是客服小王"
    assert call["body"][0]["metadata"] == {"handoff_agent": "alice"}
    texts = [(m["role"], m["text"]) for m in await store.messages(ticket_id)]
    assert ("agent", "您好，我是客服小王") in texts
    polled = requests.get(console.url + "/handoff/messages",
                          params={"conversation_id": "conv-reply", "after": 0}).json()
    assert polled["status"] == "assigned" and [m["text"] for m in polled["messages"]] == ["您好，我是客服小王"]


async def test_rasa_down_is_a_clear_502_and_the_message_is_kept(console, store, rasa_api):
    alice = login(console, "alice")
    ticket_id = await new_ticket(store)
    alice.post(f"/api/tickets/{ticket_id}/claim")
    rasa_api.fail = True
    try:
        resp = alice.post(f"/api/tickets/{ticket_id}/messages", {"text": "are you there?"})
        assert resp.status_code == 502 and "Rasa" in resp.json()["detail"]
        closing = alice.post(f"/api/tickets/{ticket_id}/close", {"disposition": "resolved"})
        assert closing.status_code == 502
    finally:
        rasa_api.fail = False
    assert "are you there?" in [m["text"] for m in await store.messages(ticket_id)]
    assert (await store.get(ticket_id)).status == "assigned", "a failed resume leaves the ticket open"


async def test_transfer_moves_the_ticket_to_another_queue(console, store):
    alice, sara = login(console, "alice"), login(console, "sara")
    ticket_id = await new_ticket(store)
    assert alice.post(f"/api/tickets/{ticket_id}/claim").status_code == 200
    resp = alice.post(f"/api/tickets/{ticket_id}/transfer", {"queue": "senior"})
    assert resp.status_code == 200 and resp.json()["ticket"]["status"] == "waiting"
    assert resp.json()["ticket"]["queue"] == "senior"
    assert ticket_id in [t["id"] for t in sara.get("/api/queues").json()["queues"]["senior"]]
    assert alice.get(f"/api/tickets/{ticket_id}").status_code == 404
    assert sara.post(f"/api/tickets/{ticket_id}/claim").status_code == 200


async def test_close_resumes_the_bot_then_asks_for_a_rating(console, store, rasa_api):
    sara = login(console, "sara")
    ticket_id = await new_ticket(store, queue="senior", conversation="conv-close", reason="angry")
    sara.post(f"/api/tickets/{ticket_id}/claim")
    assert sara.post(f"/api/tickets/{ticket_id}/close", {"disposition": "not-a-code"}).status_code == 400
    resp = sara.post(f"/api/tickets/{ticket_id}/close", {"disposition": "resolved"})
    assert resp.status_code == 200 and resp.json()["ticket"]["status"] == "closed"
    assert rasa_api.kinds("conv-close") == ["handoff:started", "resume", "handoff:ended", "execute:utter_ask_rating"]
    assert rasa_api.events_for("conv-close")[-1]["output_channel"] == "latest"
    ticket = await store.get(ticket_id)
    assert ticket.disposition == "resolved" and ticket.agent == "sara"
    polled = requests.get(console.url + "/handoff/messages", params={"conversation_id": "conv-close"}).json()
    assert polled["status"] == "closed"
    assert [(m["role"], m["text"]) for m in polled["messages"]] == [("bot", "please rate us (utter_ask_rating)")]
    assert sara.post(f"/api/tickets/{ticket_id}/close", {"disposition": "resolved"}).status_code == 409
    assert sara.post(f"/api/tickets/{ticket_id}/messages", {"text": "late"}).status_code == 409


HOSTILE_IDS = ["../../etc/passwd", "' OR '1'='1", "x" * 5000, "%00", "<script>", "0" * 32]


@pytest.mark.parametrize("ticket_id", HOSTILE_IDS)
def test_hostile_ticket_ids_are_404(console, ticket_id):
    alice = login(console, "alice")
    assert alice.get(f"/api/tickets/{ticket_id}").status_code in (404, 414)
    assert alice.post(f"/api/tickets/{ticket_id}/claim").status_code in (404, 414)


async def test_malformed_oversized_hostile_and_empty_bodies(console, store):
    alice = login(console, "alice")
    ticket_id = await new_ticket(store)
    alice.post(f"/api/tickets/{ticket_id}/claim")
    url = f"/api/tickets/{ticket_id}/messages"
    cases = [
        (alice.post(url, data=b"{not json", headers={"Content-Type": "application/json"}), 400),
        (alice.post(url, data=b"", headers={"Content-Type": "application/json"}), 400),
        (alice.post(url, ["a", "list"]), 400),
        (alice.post(url, {"text": ""}), 400),
        (alice.post(url, {"text": "   "}), 400),
        (alice.post(url, {"text": 42}), 400),
        (alice.post(url, {"text": "x" * 9000}), 400),
        (alice.post(url, data=json.dumps({"text": "x" * 70_000}), headers={"Content-Type": "application/json"}), 413),
        (alice.post(url, data="text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (alice.post(f"/api/tickets/{ticket_id}/transfer", {"queue": "Senior; DROP TABLE handoff_tickets"}), 400),
        (alice.post(f"/api/tickets/{ticket_id}/transfer", {}), 400),
        (alice.post(f"/api/tickets/{ticket_id}/close", {"disposition": None}), 400),
        (alice.get("/handoff/messages", params={"conversation_id": "x", "after": "-1"}), 400),
        (alice.get("/handoff/messages", params={"conversation_id": "x", "after": "abc"}), 400),
        (alice.get("/handoff/messages"), 400),
    ]
    for resp, expected in cases:
        assert resp.status_code == expected, (resp.request.url, resp.request.body and resp.request.body[:60],
                                              resp.status_code, resp.text[:200])
        if expected != 413:
            assert "detail" in resp.json()
    assert alice.post(url, {"text": "nul\x00 and emoji 🙂 <b>bold</b>"}).status_code == 201
    stored = [m["text"] for m in await store.messages(ticket_id) if m["role"] == "agent"]
    assert stored == ["nul and emoji 🙂 <b>bold</b>"], "NUL dropped, markup kept as text"
    assert (await store.get(ticket_id)).status == "assigned", "nothing broke the ticket"


async def test_websocket_pushes_messages_and_takes_replies(console, store):
    alice = login(console, "alice")
    ticket_id = await new_ticket(store)
    alice.post(f"/api/tickets/{ticket_id}/claim")
    await store.add_message(ticket_id, "customer", "<img src=x onerror=alert(1)>我的卡被吞了")
    ws_url = console.url.replace("http://", "ws://") + f"/ws/tickets/{ticket_id}"
    cookie = "kefu_session=" + alice.http.cookies["kefu_session"]
    sock = websocket.create_connection(ws_url, cookie=cookie, origin=console.url, timeout=10)
    try:
        seen = []
        while not any(m.get("text", "").endswith("我的卡被吞了") for m in seen):
            seen.append(json.loads(sock.recv()))
        assert seen[-1]["role"] == "customer" and seen[-1]["text"].startswith("<img"), "raw text, no HTML rendering"
        sock.send(json.dumps({"type": "send", "text": "请稍等，我来查"}))
        while not (seen[-1].get("role") == "agent" and seen[-1].get("text") == "请稍等，我来查"):
            seen.append(json.loads(sock.recv()))
        sock.send("not json at all")
        assert json.loads(sock.recv())["type"] == "error"
        sock.send(json.dumps({"type": "send", "text": ""}))
        assert json.loads(sock.recv())["type"] == "error"
        sock.send(json.dumps({"type": "send", "text": "x" * 20_000}))  # over WEBSOCKET_MAX_SIZE (16 KB)
        with pytest.raises(websocket.WebSocketException):
            while True:
                sock.recv()
    finally:
        sock.close()
    assert "x" * 20_000 not in [m["text"] for m in await store.messages(ticket_id)]
    assert requests.get(console.url + "/healthz").status_code == 200, "the console shrugged it off"


def test_websocket_refuses_other_origins_and_anonymous(console):
    alice = login(console, "alice")
    ws_url = console.url.replace("http://", "ws://") + "/ws/tickets/" + "0" * 32
    cookie = "kefu_session=" + alice.http.cookies["kefu_session"]
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(ws_url, cookie=cookie, origin="http://evil.example", timeout=10)
    assert exc.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(ws_url, origin=console.url, timeout=10)
