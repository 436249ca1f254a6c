"""The web chat, served by the Rasa server itself (no CDN, no extra process).

- `/chat/` is the full-page chat; `/chat/embed` is the same app inside the widget's iframe.
- `/chat/widget.js` is the embeddable loader any site pastes:
  `<script src="http://HOST:5005/chat/widget.js" defer></script>` (optional `data-kefu-url`,
  `data-lang="zh|en"`). It adds a launcher button and a panel holding an iframe of `/chat/embed`.
- `/chat/vendor/*` are the npm packages installed at setup (`npm ci`): socket.io-client,
  marked and DOMPurify.

Why an iframe and not Shadow DOM: the chat then runs on our origin, so socket.io stays
same-origin (no CORS), our strict CSP applies to it whatever the host page's policy is,
its localStorage (session id, transcript) is out of the host page's scripts' reach, and
a host page's scripts or styles cannot tamper with it. The launcher itself lives in a
Shadow DOM on the host page so the host's CSS cannot restyle it.

Credentials (`credentials.yml`): `frame_ancestors`: list of origins allowed to embed the
widget (CSP frame-ancestors of `/chat/embed`); default: Kefu itself and the host pages in
KEFU_WIDGET_ORIGINS, or `["*"]`, any site, when that is unset. Whoever embeds it, the chat posts
its messages (session id, transcript) only to the host origin widget.js passes as `?host=`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from custom_components.channels.limits import cap_request_size
from kefu.config import PROJECT_ROOT, load_settings
from kefu.errors import ConfigError

STATIC_DIR = Path(__file__).resolve().parent / "webchat_static"
NODE_MODULES = PROJECT_ROOT / "node_modules"
VENDOR_FILES = {
    "socket.io.min.js": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
    "marked.umd.js": NODE_MODULES / "marked" / "lib" / "marked.umd.js",
    "purify.min.js": NODE_MODULES / "dompurify" / "dist" / "purify.min.js",
}
PAGE_FILES = {"index.html", "chat.js", "chat.css", "widget.js"}
_ORIGIN = re.compile(r"\*|'self'|https?://(\*\.)?[A-Za-z0-9.\-]+(:\d{1,5})?")


def security_headers(frame_ancestors: str = "'self'") -> Dict[str, str]:
    """Headers of every page and asset: strict CSP (no inline script), no sniffing."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' ws: wss:; frame-ancestors {frame_ancestors}; base-uri 'none'; "
            "form-action 'self'; object-src 'none'"
        ),
    }


def parse_frame_ancestors(value: Any) -> str:
    """Check the configured embedding origins; a typo must fail at start, not open the page."""
    if value is None:
        return "*"
    items: List[Any] = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and _ORIGIN.fullmatch(i.strip()) for i in items):
        raise ConfigError(
            "webchat frame_ancestors must be a list of origins like https://shop.example, '*' or \"'self'\""
        )
    return " ".join(i.strip() for i in items)


class WebChatInput(InputChannel):
    """Serves the chat page and the widget; messages flow through the socket.io channel."""

    def __init__(self, frame_ancestors: str = "*") -> None:
        self.frame_ancestors = frame_ancestors

    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        ancestors = (credentials or {}).get("frame_ancestors")
        widget_origins = load_settings().widget_origins
        if ancestors is None and widget_origins:  # KEFU_WIDGET_ORIGINS: these host pages (and Kefu) only
            ancestors = ["'self'", *widget_origins]
        return cls(parse_frame_ancestors(ancestors))

    def url_prefix(self) -> str:
        return "/chat"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        page = cap_request_size(Blueprint("kefu_webchat", __name__))
        own = security_headers()
        embeddable = security_headers(self.frame_ancestors)

        @page.route("/", methods=["GET"])
        async def index(_: Request) -> HTTPResponse:
            return await response.file(STATIC_DIR / "index.html", headers=own)

        @page.route("/<name:str>", methods=["GET"])
        async def asset(_: Request, name: str) -> HTTPResponse:
            name = name or "index.html"  # Sanic routes "/chat/" here with an empty name
            if name == "embed":
                return await response.file(STATIC_DIR / "index.html", headers=embeddable)
            if name not in PAGE_FILES:
                return response.json({"status": 404, "reason": "not found"}, status=404)
            headers = dict(own)
            if name == "widget.js":  # loaded by other sites' pages
                headers["Cross-Origin-Resource-Policy"] = "cross-origin"
                headers["Cache-Control"] = "public, max-age=300"
            return await response.file(STATIC_DIR / name, headers=headers)

        @page.route("/vendor/<name:str>", methods=["GET"])
        async def vendor(_: Request, name: str) -> HTTPResponse:
            path = VENDOR_FILES.get(name)
            if path is None or not path.is_file():
                return response.json({"status": 404, "reason": "not found (run `make setup`)"}, status=404)
            return await response.file(path, headers=own)

        return page
