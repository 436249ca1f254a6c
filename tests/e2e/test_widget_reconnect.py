"""The chat reconnects after the Rasa server restarts: socket.io's auto-reconnect, the same session
id rejoins its room, and the conversation (kept in PostgreSQL) continues where it stopped.

Uses its own stack (actions + Rasa on free ports, a fresh database) so it can stop and start it."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from kefu.config import Settings
from kefu.pgserver import with_database
from ops.runner import Stack
from tests.e2e import widget_support
from tests.e2e.widget_support import open_chat, screenshot, send, session_of, wait_count, wait_ready
from tests.servers import drop_database, require_model, stack_settings

pytestmark = [pytest.mark.servers, pytest.mark.browser]

browser = widget_support.browser  # a shared fixture


@pytest.fixture
def own_stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Settings]]:
    database = f"kefu_reconnect_{uuid.uuid4().hex[:8]}"
    settings = stack_settings(tmp_path_factory.mktemp("reconnect"), with_database(pg_admin_url, database))
    stack = Stack(settings, require_model())
    try:
        stack.start()
        yield stack, settings
    finally:
        stack.stop()
        drop_database(pg_admin_url, database)


def test_chat_reconnects_after_a_server_restart(own_stack, browser):
    stack, settings = own_stack
    context = browser.new_context(locale="zh-CN")
    page = open_chat(context, settings)
    send(page, "我的卡丢了", 1)
    assert "后四位" in page.locator(".msg--bot .msg__bubble").last.inner_text()
    session = session_of(page)

    stack.stop()
    page.wait_for_selector(".chat__status[data-state=offline]", timeout=30_000)
    assert page.locator("#status").inner_text() == "已断开，正在重连…"
    screenshot(page, "widget-reconnect-offline.png")

    page.fill("#input", "6217")  # typed while offline: kept and sent once the session is rejoined
    page.press("#input", "Enter")

    stack.start()  # same ports, same database
    wait_ready(page, timeout=60_000)  # socket.io reconnected and session_request rejoined the room
    assert session_of(page) == session
    wait_count(page, ".msg--bot", 2)
    assert "手机" in page.locator(".msg--bot .msg__bubble").last.inner_text(), "the lost-card form continued"
    assert page.locator(".msg--user").count() == 2
    screenshot(page, "widget-reconnect-online.png")
    context.close()
