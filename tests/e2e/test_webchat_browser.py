"""The web chat page in headless Chromium (Playwright driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = [pytest.mark.servers, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: run scripts/install-browser as root (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def bot_texts(page) -> list[str]:
    return page.locator(".msg--bot .msg__bubble").all_inner_texts()


def send(page, text: str, expected_bot_count: int) -> None:
    page.fill("#input", text)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.msg--bot').length >= n", arg=expected_bot_count, timeout=60_000
    )


def test_chat_page_talks_and_survives_a_reload(kefu_stack, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(kefu_stack.chat_url.replace("localhost", "127.0.0.1"))
    page.wait_for_selector(".chat__status[data-state=online]", timeout=20_000)
    assert page.locator("#send").inner_text() == "发送"

    send(page, "我的卡丢了", 1)
    assert "后四位" in bot_texts(page)[-1]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat-zh.png"))

    page.reload()
    page.wait_for_selector(".chat__status[data-state=online]", timeout=20_000)
    assert page.locator(".msg--user").count() == 1, "the transcript is restored after a reload"
    send(page, "6217", 2)
    assert "手机" in bot_texts(page)[-1], "the same conversation continued: the form asked for the phone"
    page.screenshot(path=str(SCREENSHOTS / "webchat-zh-reloaded.png"))
    assert errors == []
    context.close()


def test_english_browser_gets_an_english_page_and_bot_text_is_not_html(kefu_stack, browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(kefu_stack.chat_url.replace("localhost", "127.0.0.1"))
    page.wait_for_selector(".chat__status[data-state=online]", timeout=20_000)
    assert page.locator("#send").inner_text() == "Send"
    send(page, "<img src=x onerror=alert(1)> hello", 1)
    assert page.locator(".msg--user img").count() == 0, "user text is rendered as text"
    assert page.locator(".msg--user .msg__bubble").inner_text().startswith("<img")
    context.close()
