"""Human handoff end to end: the web chat, Rasa, the action server, the agent console and
PostgreSQL, driven by headless Chromium (Playwright on /usr/bin/chromium).

1. An angry customer on the web chat is routed to the senior queue; a senior agent logs into
   the console, claims, replies; the customer sees the reply; the agent closes; the bot resumes
   and asks for a rating. Also measures handoff latency (customer message → visible in console).
2. Two agents click "claim" on the same ticket at the same moment: exactly one gets it.
3. The action server and the console restart mid-handoff: no ticket or message is lost.

The ticket is created by `action_handoff` (required when the trained model contains the
routing, i.e. `action_rate` is in Rasa's domain). With an older model that does not hand over,
the tests create it through `TicketStore.create` plus a `pause` event over Rasa's HTTP API
instead (printed as "direct"), so the console, relay and channel parts are still proven; the
rating step is then skipped with a printed note. `KEFU_E2E_MODEL` points at another model file.
Screenshots: tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from handoff.tickets import Ticket, TicketStore
from kefu.config import Settings
from kefu.pgserver import with_database
from ops.runner import Stack, child_env, wait_http
from tests.handoff.console_fixtures import PASSWORD, Client, add_agent, kefu_env
from tests.servers import drop_database, require_model, stack_settings

pytestmark = [pytest.mark.servers, pytest.mark.browser, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
ANGRY = "你们这是什么垃圾服务！！气死我了，太差劲了！"


@dataclass
class HandoffStack:
    settings: Settings
    stack: Stack
    token: str

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.settings.console_port}"

    @property
    def rasa(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    def store(self, fn: Callable[[TicketStore], Any]) -> Any:
        async def go() -> Any:
            async with TicketStore(self.settings.postgres_url, max_size=2) as store:
                return await fn(store)

        # Playwright's sync API runs an event loop in this thread: use a fresh one in a worker thread
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()

    def has_routing(self) -> bool:
        domain = requests.get(self.rasa + "/domain", params={"token": self.token},
                              headers={"Accept": "application/json"}, timeout=10).json()
        return "action_rate" in domain.get("actions", [])

    def rasa_events(self, conversation_id: str, events: list[dict]) -> None:
        resp = requests.post(f"{self.rasa}/conversations/{conversation_id}/tracker/events",
                             params={"token": self.token}, json=events, timeout=30)
        assert resp.status_code == 200, resp.text

    def tracker(self, conversation_id: str) -> dict:
        return requests.get(f"{self.rasa}/conversations/{conversation_id}/tracker", params={"token": self.token},
                            timeout=30).json()

    def stop_child(self, name: str) -> None:
        next(c for c in self.stack.children if c.name == name).stop()

    def restart(self, name: str) -> None:
        """Stop one child of the stack (SIGTERM) if running and start it again with the same command line."""
        child = next(c for c in self.stack.children if c.name == name)
        child.stop()
        self.stack.children.remove(child)
        env = child_env(self.settings, {"KEFU_POSTGRES_URL": self.settings.postgres_url, "KEFU_RASA_TOKEN": self.token,
                                        "KEFU_RASA_PORT": str(self.settings.rasa_port)})
        if getattr(self.stack, "graph_url", None):  # the same knowledge graph the first start used
            env["KEFU_GRAPH_URL"] = self.stack.graph_url
        new = self.stack._spawn(name, list(child.proc.args), env)
        health = {"actions": f"http://127.0.0.1:{self.settings.actions_port}/health",
                  "console": f"{self.console}/healthz"}[name]
        wait_http(health, 120, new.proc)


@pytest.fixture(scope="module")
def handoff_stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffStack]:
    model = Path(os.environ.get("KEFU_E2E_MODEL") or require_model())
    database = f"kefu_handoff_e2e_{uuid.uuid4().hex[:8]}"
    var = tmp_path_factory.mktemp("handoff_var")
    settings = stack_settings(var, with_database(pg_admin_url, database))
    stack = Stack(settings, model)
    try:
        stack.start()
        env = kefu_env(settings.postgres_url, var)
        for name, role in (("sara", "senior"), ("sam", "senior"), ("vera", "supervisor")):
            add_agent(env, name, role)
        yield HandoffStack(settings, stack, settings.rasa_token or "")
    finally:
        stack.stop()
        drop_database(pg_admin_url, database)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: run scripts/install-browser as root (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def console_login(browser: Any, hs: HandoffStack, name: str, locale: str = "zh-CN") -> Any:
    page = browser.new_context(locale=locale).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(hs.console + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("#queues")
    return page


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def open_ticket_for(hs: HandoffStack, conversation_id: str, routed: bool, channel: str) -> tuple[Ticket, str]:
    """The ticket action_handoff created (routed model), or a direct one plus a Rasa pause."""
    try:
        ticket = wait_until(lambda: hs.store(lambda s: s.active_for_conversation(conversation_id)),
                            60 if routed else 15, "action_handoff's ticket")
        return ticket, "action_handoff"
    except AssertionError:
        if routed:
            raise
    ticket = hs.store(lambda s: s.create(
        conversation_id=conversation_id, channel=channel, queue="senior",
        reason="angry", priority=100, language="zh",
        transcript=[{"role": "customer", "text": ANGRY, "ts": time.time()}],
        sentiment_trend=[{"label": "negative", "score": -0.9}],
        suggestions=[{"source": "faq_response", "text": "非常抱歉给您带来不便，我马上为您处理。"}],
    ))
    hs.rasa_events(conversation_id, [{"event": "pause", "timestamp": time.time()}])
    return ticket, "direct"


def bubble_with(page: Any, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "t => [...document.querySelectorAll('.msg__bubble')].some(b => b.textContent.includes(t))",
        arg=text, timeout=timeout,
    )


def test_angry_customer_reaches_a_senior_agent_and_rates_the_chat(handoff_stack, browser):
    hs = handoff_stack
    routed = hs.has_routing()
    customer = browser.new_context(locale="zh-CN").new_page()
    customer_errors: list[str] = []
    customer.on("pageerror", lambda exc: customer_errors.append(str(exc)))
    customer.goto(hs.settings.chat_url.replace("localhost", "127.0.0.1"))
    customer.wait_for_selector(".chat__status[data-state=online]", timeout=30_000)
    customer.fill("#input", ANGRY)
    customer.keyboard.press("Enter")
    customer.wait_for_function("() => document.querySelectorAll('.msg--bot, .msg--system').length >= 1",
                               timeout=60_000)
    conversation_id = customer.evaluate("() => localStorage.getItem('kefu.session')")
    assert conversation_id, "the web chat stored its session id"
    ticket, path = open_ticket_for(hs, conversation_id, routed, "socketio")
    print(f"\nscenario 1: ticket {ticket.id} created by {path}; queue={ticket.queue} reason={ticket.reason}")
    assert ticket.queue == "senior"

    agent = console_login(browser, hs, "sara")
    agent.wait_for_selector(f"button.claim[data-ticket='{ticket.id}']", timeout=30_000)
    shot(agent, "console-queues-zh.png")
    agent.click(f"button.claim[data-ticket='{ticket.id}']")
    agent.wait_for_selector("#reply", timeout=30_000)
    assert hs.store(lambda s: s.get(ticket.id)).agent == "sara"

    latencies = []
    hostile = '<img src=x onerror="window.__xss=1">'
    for i in range(20):
        text = hostile if i == 5 else f"第{i}条：我的卡到底怎么回事？"
        customer.fill("#input", text)
        customer.keyboard.press("Enter")
        started = time.perf_counter()
        agent.wait_for_function(
            "t => [...document.querySelectorAll('#chat-log .msg--customer')].some(m => m.textContent.includes(t))",
            arg=text, timeout=30_000,
        )
        latencies.append((time.perf_counter() - started) * 1000)
    assert agent.evaluate("() => window.__xss") is None and agent.locator("#chat-log img").count() == 0
    assert agent.locator("#chat-log .msg--customer", has_text="<img src=x").count() == 1, "shown as text"
    cuts = statistics.quantiles(latencies, n=20, method="inclusive")
    print(f"handoff latency, customer message → visible in console ({len(latencies)} messages, {path}):")
    for label, value in (("p50", statistics.median(latencies)), ("p95", cuts[18]), ("max", max(latencies))):
        print(f"| {label} | {value:.0f} ms |")
    print("all (ms):", " ".join(f"{v:.0f}" for v in latencies))

    if agent.locator(".suggestion .insert").count():
        agent.click(".suggestion .insert")
        assert agent.input_value("#reply"), "the suggestion was inserted into the reply box"
    reply = "您好，我是高级客服小王，非常抱歉给您带来不便。"
    agent.fill("#reply", reply)
    agent.click("#send")
    bubble_with(customer, reply)
    agent.wait_for_selector("#chat-log .msg--agent")
    shot(agent, "console-chat-zh.png")
    shot(customer, "webchat-agent-reply-zh.png")

    supervisor = console_login(browser, hs, "vera")
    supervisor.goto(hs.console + "/supervisor")
    supervisor.wait_for_selector("#m-open")
    shot(supervisor, "console-supervisor-zh.png")
    supervisor.goto(hs.console + "/supervisor?lang=en")
    supervisor.wait_for_selector("#m-open")
    assert "Live metrics" in supervisor.content()
    shot(supervisor, "console-supervisor-en.png")

    agent.select_option("#disposition", "resolved")
    agent.click("#close")
    wait_until(lambda: hs.store(lambda s: s.get(ticket.id)).status == "closed", 30, "the ticket to close")
    assert hs.tracker(conversation_id).get("paused") is False, "ConversationResumed was appended"
    if routed:
        bubble_with(customer, "打分", timeout=60_000)
        shot(customer, "webchat-rating-zh.png")
        customer.fill("#input", "5")
        customer.keyboard.press("Enter")
        wait_until(lambda: hs.store(lambda s: s.get(ticket.id)).rating == 5, 60, "the rating on the ticket")
    else:
        print("scenario 1: the model has no routing/rating (action_rate): rating question not checked")
    assert customer_errors == [] and agent.errors == []


def test_two_agents_claim_the_same_ticket_at_once(handoff_stack, browser):
    hs = handoff_stack
    sara, sam = console_login(browser, hs, "sara"), console_login(browser, hs, "sam")
    for round_ in range(3):
        ticket = hs.store(lambda s: s.create(conversation_id=f"race-{uuid.uuid4().hex[:8]}", channel="rest",
                                             queue="senior", reason="angry", priority=100, language="zh"))
        selector = f"button.claim[data-ticket='{ticket.id}']"
        for page in (sara, sam):
            page.goto(hs.console + "/console")  # a fresh view: no ticket panel from the last round
            page.wait_for_selector(selector, timeout=30_000)
        at = sara.evaluate("() => Date.now()") + 1500
        for page in (sara, sam):
            page.evaluate("([sel, at]) => setTimeout(() => document.querySelector(sel).click(), at - Date.now())",
                          [selector, at])
        for page in (sara, sam):
            page.wait_for_selector("#reply, .notice", timeout=30_000)
        won = {name: page.locator("#reply").count() == 1 for name, page in (("sara", sara), ("sam", sam))}
        assert sorted(won.values()) == [False, True], won
        winner = next(name for name, ok in won.items() if ok)
        loser_page = sam if winner == "sara" else sara
        assert "已被其他坐席接入" in loser_page.locator(".notice").inner_text()
        assert hs.store(lambda s, t=ticket: s.get(t.id)).agent == winner
        if round_ == 0:
            shot(loser_page, "console-claim-race-loser-zh.png")


def test_restarts_mid_handoff_lose_no_ticket_or_message(handoff_stack):
    hs = handoff_stack
    routed = hs.has_routing()
    conv = f"rest-{uuid.uuid4().hex[:8]}"

    def say(text: str) -> list:
        resp = requests.post(hs.rasa + "/webhooks/rest/webhook", json={"sender": conv, "message": text}, timeout=60)
        assert resp.status_code == 200, resp.text
        return resp.json()

    say(ANGRY)
    ticket, path = open_ticket_for(hs, conv, routed, "rest")
    print(f"\nscenario 3: ticket {ticket.id} created by {path}")
    agent = Client(hs.console)
    assert agent.login("sara").status_code == 303
    assert agent.post(f"/api/tickets/{ticket.id}/claim").status_code == 200
    assert agent.post(f"/api/tickets/{ticket.id}/messages", {"text": "先别急，我来处理"}).status_code == 201

    hs.stop_child("console")
    hs.stop_child("actions")
    assert say("我等了很久了") == [] and say("还在吗？") == [], "paused: the bot stays silent"
    hs.restart("actions")
    hs.restart("console")

    def customer_texts() -> list[str]:
        return [m["text"] for m in hs.store(lambda s: s.messages(ticket.id)) if m["role"] == "customer"]

    wait_until(lambda: customer_texts()[-2:] == ["我等了很久了", "还在吗？"], 30, "messages sent during the restart")
    time.sleep(1.5)
    assert customer_texts().count("我等了很久了") == 1 and customer_texts().count("还在吗？") == 1, "no duplicates"
    assert hs.store(lambda s: s.get(ticket.id)).status == "assigned", "the ticket survived, still Sara's"

    assert agent.post(f"/api/tickets/{ticket.id}/messages", {"text": "已为您处理好了"}).status_code == 201, \
        "the session cookie still works after the restart"
    polled = requests.get(hs.console + "/handoff/messages", params={"conversation_id": conv}).json()
    assert [m["text"] for m in polled["messages"] if m["role"] == "agent"] == ["先别急，我来处理", "已为您处理好了"]
    assert agent.post(f"/api/tickets/{ticket.id}/close", {"disposition": "resolved"}).status_code == 200
    assert hs.tracker(conv).get("paused") is False
    if routed:
        polled = requests.get(hs.console + "/handoff/messages", params={"conversation_id": conv}).json()
        assert any(m["role"] == "bot" and "打分" in m["text"] for m in polled["messages"]), polled
        say("4")
        wait_until(lambda: hs.store(lambda s: s.get(ticket.id)).rating == 4, 60, "the rating via the restarted actions")
    else:
        print("scenario 3: the model has no routing/rating (action_rate): rating not checked")


