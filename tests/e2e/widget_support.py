"""Helpers and fixtures for the web chat widget's browser tests (headless Chromium via Playwright).

Test modules bind the fixtures they use: `browser = widget_support.browser`.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from kefu.config import Settings
from tests.servers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: run scripts/install-browser as root (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.rasa_port}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path


def open_chat(context: Any, settings: Settings, path: str = "/chat/") -> Any:
    """A page of the full-page chat, connected (status online) and with a confirmed session."""
    page = context.new_page()
    page.goto(base_url(settings) + path)
    wait_ready(page)
    return page


def wait_ready(page_or_frame: Any, timeout: float = 20_000) -> None:
    page_or_frame.wait_for_selector("#chat[data-session=confirmed]", timeout=timeout)


def session_of(page_or_frame: Any) -> str:
    return page_or_frame.evaluate("() => localStorage.getItem('kefu.session')")


def send(page_or_frame: Any, text: str, expected_bot_count: int, selector: str = ".msg--bot") -> None:
    """Type `text`, press Enter and wait until at least `expected_bot_count` messages match `selector`."""
    page_or_frame.fill("#input", text)
    page_or_frame.press("#input", "Enter")
    wait_count(page_or_frame, selector, expected_bot_count)


def wait_count(page_or_frame: Any, selector: str, count: int, timeout: float = 60_000) -> None:
    page_or_frame.wait_for_function(
        "([s, n]) => document.querySelectorAll(s).length >= n", arg=[selector, count], timeout=timeout
    )


def push_events(settings: Settings, session_id: str, events: list[dict]) -> None:
    """Append events to a conversation through Rasa's HTTP API and deliver its bot messages to the
    conversation's latest channel: the path the handoff relay and the agent console use."""
    url = (
        f"{base_url(settings)}/conversations/{session_id}/tracker/events"
        f"?output_channel=latest&execute_side_effects=true&include_events=NONE&token={settings.rasa_token}"
    )
    body = json.dumps(events).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200


def push_bot_message(
    settings: Settings, session_id: str, text: Optional[str] = None, data: Optional[dict] = None
) -> None:
    """Say something to the customer as the bot (or, during a handoff, as the agent)."""
    push_events(settings, session_id, [{"event": "bot", "text": text, "data": data or {}}])


class HostSite:
    """A third-party site on another origin (`http://localhost:PORT`, while Kefu is at
    127.0.0.1) whose pages embed the widget with the documented snippet. A real server, not a
    Playwright route: Chromium blocks public (and routed) pages from loading loopback scripts."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = site.pages.get(self.path.split("?")[0], "").encode("utf-8")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, context: Any, settings: Settings, attrs: str = "") -> Any:
        path = f"/product/{len(self.pages) + 1}"
        snippet = f'<script src="{base_url(settings)}/chat/widget.js" {attrs} defer></script>'
        self.pages[path] = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
            "<style>body{font-family:sans-serif;margin:40px} button{background:red!important}</style></head>"
            "<body><h1>An online shop</h1><p>Products, prices and a help link.</p>"
            f"<a href='#top' id='host-link'>Top</a>{snippet}</body></html>"
        )
        page = context.new_page()
        page.goto(self.origin + path)
        return page

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()
