"""The agent console on Sanic 21.12: its configuration, and `create_app`, which composes the parts.

Each concern registers its own routes: `auth` (login, logout), `views` (pages, health check),
`ticket_api` (agents' JSON API), `supervisor_api` (figures, thresholds), `webhooks` (adapters'
webhooks, REST customers' polling) and `sockets` (the ticket WebSocket); `web` holds what they
share (sessions, CSRF, cookies, errors, security headers, see its docstring for the security
model) and `resources` opens the stores when the server starts. The process entry point is the
shell's `ops/console.py`, which also hands in the live-figures provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sanic import Sanic

from handoff.console import auth, resources, sockets, supervisor_api, ticket_api, views, web, webhooks
from handoff.console.live import LiveMetrics
from handoff.rasa_api import RATING_ACTION

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
MAX_WS_MESSAGE = 16 * 1024


@dataclass
class ConsoleConfig:
    """What the console needs; `ops.console` builds it from `kefu.config`."""

    postgres_url: str = field(repr=False)
    rasa_url: str
    rasa_token: Optional[str] = field(default=None, repr=False)
    adapter: str = "console"
    adapter_options: dict[str, Any] = field(default_factory=dict, repr=False)
    secure_cookies: Optional[bool] = None  # None: Secure exactly when the request came over https
    relay_interval: float = 0.25
    rating_action: str = RATING_ACTION
    model_path: Optional[Path] = None  # the model `kefu run` serves: the supervisor's thresholds panel
    max_request_bytes: int = MAX_BODY  # KEFU_MAX_REQUEST_BYTES; the console never accepts more than MAX_BODY


def create_app(config: ConsoleConfig, name: str = "kefu_console", *, live_metrics: LiveMetrics) -> Sanic:
    """Build the console app; resources open in `before_server_start`, close after stop."""
    app = Sanic(name, register=False, env_prefix="KEFU_SANIC_")
    app.config.REQUEST_MAX_SIZE = min(MAX_BODY, config.max_request_bytes)  # 413 before reading, chunked or not
    app.config.WEBSOCKET_MAX_SIZE = MAX_WS_MESSAGE
    app.config.KEEP_ALIVE_TIMEOUT = 15
    app.ctx.config = config
    app.ctx.live_metrics = live_metrics
    app.static("/static", str(STATIC), name="static")
    resources.install(app)
    web.install(app)
    for routes in (views, auth, ticket_api, supervisor_api, sockets, webhooks):
        routes.register(app)
    return app
