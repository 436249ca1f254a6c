"""The web chat page, served by the Rasa server itself at /chat/ (no CDN, no extra process).

The page talks to the socket.io channel; its socket.io client comes from npm at setup
(`node_modules/socket.io-client`) and is served from /chat/vendor/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from kefu.config import PROJECT_ROOT

STATIC_DIR = Path(__file__).resolve().parent / "webchat_static"
VENDOR_FILES = {
    "socket.io.min.js": PROJECT_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
}
PAGE_FILES = {"index.html", "chat.js", "chat.css"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'self'"
    ),
}


class WebChatInput(InputChannel):
    """Serves the chat page; messages flow through the socket.io channel, not here."""

    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls()

    def url_prefix(self) -> str:
        return "/chat"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        page = Blueprint("kefu_webchat", __name__)

        @page.route("/", methods=["GET"])
        async def index(_: Request) -> HTTPResponse:
            return await response.file(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)

        @page.route("/<name:str>", methods=["GET"])
        async def asset(_: Request, name: str) -> HTTPResponse:
            name = name or "index.html"  # Sanic routes "/chat/" here with an empty name
            if name not in PAGE_FILES:
                return response.json({"status": 404, "reason": "not found"}, status=404)
            return await response.file(STATIC_DIR / name, headers=SECURITY_HEADERS)

        @page.route("/vendor/<name:str>", methods=["GET"])
        async def vendor(_: Request, name: str) -> HTTPResponse:
            path = VENDOR_FILES.get(name)
            if path is None or not path.is_file():
                return response.json({"status": 404, "reason": "not found (run `make setup`)"}, status=404)
            return await response.file(path, headers=SECURITY_HEADERS)

        return page
