"""The chat's features in headless Chromium: quick replies, typing indicator, language switch,
keyboard and screen-reader access, and the handoff state (waiting → agent → back to the bot)."""

from __future__ import annotations

import re

import pytest

from tests.e2e import widget_support
from tests.e2e.widget_support import (
    open_chat,
    push_bot_message,
    push_events,
    screenshot,
    send,
    session_of,
    wait_count,
    wait_ready,
)

browser = widget_support.browser  # a shared fixture

pytestmark = [pytest.mark.servers, pytest.mark.browser]

TYPING_RECORDER = """() => {
  window.__typingSeen = [];
  const el = document.getElementById('typing');
  new MutationObserver(() => window.__typingSeen.push(el.hidden ? 'off' : 'on'))
    .observe(el, {attributes: true, attributeFilter: ['hidden']});
}"""


def test_quick_reply_buttons_send_their_payload(kefu_stack, browser):
    context = browser.new_context(locale="en-US")
    page = open_chat(context, kefu_stack)
    send(page, "hello", 1)
    page.evaluate(TYPING_RECORDER)
    buttons = [
        {"title": "I lost my card", "payload": "/report_lost_card"},
        {"title": "<b>Track</b> an order", "payload": "/order_status"},
    ]
    push_bot_message(kefu_stack, session_of(page), text="What can I do for you?", data={"buttons": buttons})
    group = page.get_by_role("group", name="Suggested replies")
    group.wait_for()
    assert group.get_by_role("button").all_inner_texts() == ["I lost my card", "<b>Track</b> an order"]
    screenshot(page, "widget-buttons.png")

    bots = page.locator(".msg--bot").count()
    group.get_by_role("button", name="I lost my card").click()
    wait_count(page, ".msg--bot", bots + 1)
    assert page.locator(".msg--user .msg__bubble").last.inner_text() == "I lost my card", "the title is shown"
    assert "last 4 digits" in page.locator(".msg--bot .msg__bubble").last.inner_text(), "the payload was sent"
    assert group.get_by_role("button", name="I lost my card").is_disabled(), "answered buttons are disabled"
    assert page.evaluate("() => document.activeElement.id") == "input"
    page.wait_for_function("() => window.__typingSeen.lastIndexOf('off') > window.__typingSeen.indexOf('on')")
    seen = page.evaluate("() => window.__typingSeen")
    assert "on" in seen and seen[-1] == "off", ("typing shown during the turn, hidden after it", seen)
    assert page.locator("#typing").is_hidden()
    context.close()


def test_language_follows_the_browser_and_the_switch_is_remembered(kefu_stack, browser):
    context = browser.new_context(locale="en-GB")
    page = open_chat(context, kefu_stack)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Send").is_visible()
    switch = page.get_by_role("button", name="切换到中文")
    assert switch.inner_text() == "中文"
    switch.click()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("button", name="发送").is_visible()
    assert page.get_by_role("textbox", name="输入消息").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "lang-switch", "focus stays on the switch"
    screenshot(page, "widget-lang-zh.png")
    page.reload()
    wait_ready(page)
    assert page.get_by_role("button", name="发送").is_visible(), "the choice survives a reload"
    page.get_by_role("button", name="Switch to English").click()
    assert page.get_by_role("button", name="Send").is_visible()
    context.close()


def test_keyboard_and_screen_reader_access(kefu_stack, browser):
    context = browser.new_context(locale="zh-CN")
    page = open_chat(context, kefu_stack)
    snapshot = page.locator("body").aria_snapshot()
    for expected in ('main "Kefu 智能客服"', 'heading "Kefu 智能客服"', 'log "对话记录"', 'status',
                     'textbox "输入消息"', 'button "发送"', 'button "Switch to English"'):
        assert expected in snapshot, (expected, snapshot)
    log = page.get_by_role("log", name="对话记录")
    assert log.get_attribute("aria-live") == "polite"

    page.locator("body").focus()
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => document.activeElement.id"))
    assert order == ["lang-switch", "log", "input", "send"], order
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "focus is visible"

    page.get_by_role("textbox", name="输入消息").focus()
    page.keyboard.type("我的卡丢了")
    page.keyboard.press("Enter")
    wait_count(page, ".msg--bot", 1)
    texts = page.locator("#log .msg").all_inner_texts()  # each message names its author for screen readers
    assert any(t.startswith("我:") for t in texts) and any(t.startswith("智能助手:") for t in texts), texts
    screenshot(page, "widget-keyboard.png")
    context.close()


def test_handoff_state_is_visible_and_goes_back(kefu_stack, browser):
    context = browser.new_context(locale="zh-CN")
    page = open_chat(context, kefu_stack)
    send(page, "转人工", 1)
    session = session_of(page)
    banner = page.locator("#handoff")

    push_bot_message(kefu_stack, session, data={"custom": {"handoff": "queued", "queue": "cards"}})
    page.wait_for_selector("#chat[data-mode=queued]")
    assert re.search("正在为您转接人工客服.*cards", banner.inner_text())

    second_tab = context.new_page()  # another tab of the same session follows the state
    second_tab.goto(page.url)
    wait_ready(second_tab)
    push_bot_message(kefu_stack, session, data={"custom": {"handoff": "started", "queue": "cards", "agent": "小李"}})
    for tab in (page, second_tab):
        tab.wait_for_selector("#chat[data-mode=agent]")
        assert "已接通人工客服：小李" in tab.locator("#handoff").inner_text()
    push_bot_message(kefu_stack, session, text="您好，我是**小李**，请问有什么可以帮您？")
    wait_count(page, ".msg--agent", 1)
    agent = page.locator(".msg--agent").last
    assert agent.locator(".msg__from").inner_text().startswith("人工客服 小李")
    assert agent.locator("strong").inner_text() == "小李"
    screenshot(page, "widget-handoff-agent.png")

    page.reload()  # the state survives a reload
    wait_ready(page)
    page.wait_for_selector("#chat[data-mode=agent]")

    # what the relay does when the agent closes the ticket: resume the bot, then announce "ended"
    push_events(kefu_stack, session, [{"event": "resume"}])
    push_bot_message(kefu_stack, session, data={"custom": {"handoff": "ended"}})
    page.wait_for_selector("#chat[data-mode=bot]")
    assert banner.is_hidden()
    assert "人工客服已结束服务" in page.locator(".msg--system").last.inner_text()
    bots = page.locator(".msg--bot").count()
    send(page, "谢谢", bots + 1)  # bot messages after the handoff are the bot's again
    screenshot(page, "widget-handoff-ended.png")
    context.close()
