"""The embeddable widget on a third-party page: the documented `<script>` snippet adds a launcher
and an iframe panel; the chat inside works, survives a reload, and is keyboard-operable."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e import widget_support
from tests.e2e.widget_support import (
    base_url,
    screenshot,
    send,
    wait_ready,
)

browser = widget_support.browser  # a shared fixture
host_site = widget_support.host_site  # a shared fixture

pytestmark = [pytest.mark.servers, pytest.mark.browser]


def get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def chat_frame(page):
    page.wait_for_selector("#kefu-widget iframe")
    frame = page.frame_locator("#kefu-widget iframe")
    inner = page.locator("#kefu-widget iframe").element_handle().content_frame()
    inner.wait_for_url(re.compile(r".*/chat/embed(\?.*)?$"))  # the iframe may still be about:blank
    return frame, inner


def test_assets_and_headers(kefu_stack):
    base = base_url(kefu_stack)
    status, headers, body = get(f"{base}/chat/widget.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and b"attachShadow" in body
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    status, headers, _ = get(f"{base}/chat/embed")
    assert status == 200 and "frame-ancestors *" in headers["Content-Security-Policy"]
    status, headers, _ = get(f"{base}/chat/")
    assert status == 200 and "frame-ancestors 'self'" in headers["Content-Security-Policy"], "not framable elsewhere"
    for name in ("socket.io.min.js", "marked.umd.js", "purify.min.js"):
        status, headers, body = get(f"{base}/chat/vendor/{name}")
        assert status == 200 and len(body) > 10_000, name
    for bad in ("vendor/..%2Fpackage.json", "..%2F..%2Fkefu%2Fconfig.py", "vendor/evil.js", "upload", "chat.js%00.png"):
        status, _, body = get(f"{base}/chat/{bad}")
        assert status == 404, (bad, status)
        assert b"import" not in body and b"dependencies" not in body


def test_widget_on_a_third_party_page(kefu_stack, browser, host_site):
    context = browser.new_context(locale="zh-CN")
    page = host_site.page(context, kefu_stack)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    launcher = page.get_by_role("button", name="在线客服", exact=True)
    launcher.wait_for()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.locator("#kefu-widget iframe").count() == 0, "the chat loads only when opened"
    assert page.evaluate("() => getComputedStyle(document.querySelector('#kefu-widget').shadowRoot"
                         ".querySelector('button')).backgroundColor") == "rgb(31, 78, 140)", "host CSS stays out"
    screenshot(page, "widget-host-closed.png")

    launcher.click()
    assert page.get_by_role("button", name="关闭在线客服").get_attribute("aria-expanded") == "true"
    assert page.get_by_role("dialog", name="Kefu 在线客服").is_visible()
    frame, inner = chat_frame(page)
    wait_ready(inner)
    inner.wait_for_function("() => document.activeElement && document.activeElement.id === 'input'")
    page.keyboard.type("我的卡丢了")
    page.keyboard.press("Enter")
    inner.wait_for_function("() => document.querySelectorAll('.msg--bot').length >= 1", timeout=60_000)
    assert "后四位" in frame.locator(".msg--bot .msg__bubble").last.inner_text()
    screenshot(page, "widget-host-open.png")

    page.keyboard.press("Escape")  # Escape in the chat closes the panel and returns focus to the launcher
    page.get_by_role("dialog", name="Kefu 在线客服").wait_for(state="hidden")
    launcher = page.get_by_role("button", name="在线客服", exact=True)
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.evaluate("() => document.activeElement.id") == "kefu-widget"
    assert page.evaluate("() => document.activeElement.shadowRoot.activeElement.className") == "launcher"

    page.reload()  # the open/closed state and the conversation survive a reload of the host page
    launcher = page.get_by_role("button", name="在线客服", exact=True)
    launcher.click()
    frame, inner = chat_frame(page)
    wait_ready(inner)
    inner.wait_for_function("() => document.querySelectorAll('.msg--bot').length >= 1")
    assert frame.locator(".msg--user").count() == 1
    send(inner, "6217", 2)
    assert "手机" in frame.locator(".msg--bot .msg__bubble").last.inner_text(), "the form continued"
    assert errors == []
    context.close()


def test_widget_language_attribute_and_switch(kefu_stack, browser, host_site):
    context = browser.new_context(locale="zh-CN")
    page = host_site.page(context, kefu_stack, attrs='data-lang="en"')
    page.get_by_role("button", name="Chat with us").click()
    frame, inner = chat_frame(page)
    wait_ready(inner)
    assert frame.get_by_role("button", name="Send").is_visible()
    frame.get_by_role("button", name="切换到中文").click()
    page.get_by_role("button", name="关闭在线客服").wait_for()  # the iframe told the launcher
    frame.get_by_role("button", name="关闭对话窗口").click()
    page.get_by_role("button", name="在线客服", exact=True).wait_for()
    assert page.get_by_role("dialog").is_hidden()
    context.close()



def test_the_chat_posts_its_messages_to_the_host_origin_only(kefu_stack, browser, host_site):
    """The iframe used to post to "*" (the storage bridge sends the session id and transcript that
    way). A host page frames two chats: one told the right host origin, one told another."""
    path = f"/framing/{len(host_site.pages) + 1}"
    embed = f"{base_url(kefu_stack)}/chat/embed?host="
    host_site.pages[path] = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Framing</title></head><body><script>"
        "window.got = []; addEventListener('message', function (e) {"
        " var from = ['bad', 'good'].filter(function (id) {"
        "   return document.getElementById(id).contentWindow === e.source; });"
        " window.got.push([from[0] || 'other', e.data && e.data.type]); });</script>"
        f"<iframe id='bad' src='{embed}http://evil.example'></iframe>"
        f"<iframe id='good' src='{embed}{host_site.origin}'></iframe></body></html>"
    )
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(host_site.origin + path)
    bad, good = (page.locator(f"#{name}").element_handle().content_frame() for name in ("bad", "good"))
    wait_ready(bad)
    wait_ready(good)
    bad.click("#close")  # posted first, to http://evil.example: the browser drops it
    good.click("#close")
    page.wait_for_function("() => window.got.some(m => m[0] === 'good' && m[1] === 'close')")
    assert [m for m in page.evaluate("() => window.got") if m[0] != "good"] == []
    context.close()
