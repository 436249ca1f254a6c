"""Markdown from the bot, from knowledge content and from an agent is rendered with marked and
sanitised with DOMPurify: `<script>` and `onerror` payloads never run.

The browser context bypasses the page's CSP (`bypass_csp=True`): the CSP (`script-src 'self'`)
would block inline handlers by itself and hide a sanitiser bug, so these tests prove the
sanitiser alone stops the payloads. Every payload sets `window.__pwned` and opens an alert
if it ever runs."""

from __future__ import annotations

import pytest

from tests.e2e import widget_support
from tests.e2e.widget_support import (
    open_chat,
    push_bot_message,
    screenshot,
    send,
    session_of,
    wait_count,
    wait_ready,
)

browser = widget_support.browser  # a shared fixture

pytestmark = [pytest.mark.servers, pytest.mark.browser]

PAYLOADS = [
    "<script>window.__pwned = 'script'; alert('script')</script>",
    "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">",
    "<svg><animate onbegin=\"window.__pwned='svg'\" attributeName=x dur=1s></svg>",
    "[click me](javascript:window.__pwned='link')",
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    "<a href=\"#\" onclick=\"window.__pwned='click'\">**bold link**</a>",
]

SOURCES = {
    "bot": lambda p: f"**Answer:** here are your options.\n\n{p}\n\n- one\n- two",
    # A knowledge-base article as the FAQ action would relay it: a heading, a link, a list.
    "knowledge": lambda p: (
        f"### 退货政策\n\n七天无理由退货，详见[帮助中心](https://help.example/returns)。\n\n{p}\n\n1. 申请\n2. 寄回"
    ),
    "agent": lambda p: f"您好，我是客服小李。{p} 请问还有什么可以帮您？",
}


def assert_not_executed(page, dialogs: list) -> None:
    page.wait_for_timeout(500)  # let an onerror / animation fire if it was going to
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    log = page.locator("#log")
    assert log.locator("script, iframe, svg, img, [onerror], [onclick], [onbegin]").count() == 0
    hrefs = log.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href') || '')")
    assert not any(h.strip().lower().startswith("javascript:") for h in hrefs), hrefs


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_markdown_payloads_are_sanitised(kefu_stack, browser, source):
    context = browser.new_context(locale="zh-CN", bypass_csp=True)
    page = open_chat(context, kefu_stack)
    dialogs: list = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    send(page, "你好", 1)
    session = session_of(page)
    if source == "agent":  # the relay announces the agent, then forwards the agent's text
        push_bot_message(kefu_stack, session, data={"custom": {"handoff": "started", "agent": "小李"}})
        page.wait_for_selector("#chat[data-mode=agent]")
    before = page.locator(".msg--bot, .msg--agent").count()
    for payload in PAYLOADS:
        push_bot_message(kefu_stack, session, text=SOURCES[source](payload))
    kind = ".msg--agent" if source == "agent" else ".msg--bot"
    wait_count(page, kind, len(PAYLOADS) + (0 if source == "agent" else before))
    assert_not_executed(page, dialogs)

    bubbles = page.locator(f"{kind} .msg__bubble")
    last = bubbles.nth(bubbles.count() - 1)
    if source == "bot":
        assert last.locator("strong").first.inner_text() == "Answer:", "markdown is rendered, not shown raw"
        assert last.locator("li").count() == 2
    elif source == "knowledge":
        link = last.locator("a", has_text="帮助中心")
        assert link.get_attribute("href") == "https://help.example/returns"
        assert link.get_attribute("rel") == "noopener noreferrer nofollow"
        assert last.locator("ol li").count() == 2
    else:
        assert "请问还有什么可以帮您" in last.inner_text()
    screenshot(page, f"widget-xss-{source}.png")

    page.reload()  # the stored transcript is rendered through the same sanitiser
    wait_ready(page)
    wait_count(page, kind, len(PAYLOADS))
    assert_not_executed(page, dialogs)
    context.close()
