"""The agent console on Sanic 21.12: resources, security middleware, login/logout and pages.

Security model: server-side sessions (random cookie token, HttpOnly, SameSite=Strict,
Secure on https or when configured); every state-changing request needs the session's CSRF
token (header `X-CSRF-Token` for the JSON API, form field for the login/logout forms, where
the login form uses a double-submit cookie) and, if the browser sends one, a same-host
Origin; WebSocket handshakes need the session cookie and a same-host Origin. Bodies are
capped (`REQUEST_MAX_SIZE`), and a strict Content-Security-Policy forbids inline script.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from psycopg_pool import AsyncConnectionPool
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.adapters import LiveChatAdapter, adapter_class
from handoff.adapters.base import AdapterLinks
from handoff.console import pages
from handoff.console.live import LiveCache
from handoff.console.plan import PlanCache
from handoff.console.users import AgentStore, Session
from handoff.rasa_api import RATING_ACTION, RasaClient
from handoff.relay import Hub, Relay
from handoff.tickets import TicketStore
from handoff.tracker_events import TrackerEvents
from kefu.errors import BadInput, KefuError, NotFound, StoreUnavailable
from ops.iterate.intents import domain_intents

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "kefu_session"
LOGIN_CSRF_COOKIE = "kefu_login_csrf"
LANG_COOKIE = "kefu_lang"
MAX_BODY = 64 * 1024
MAX_WS_MESSAGE = 16 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send `Origin: null` on form posts
}
LOGIN_FAILURES_ALLOWED = 10
LOGIN_FAILURE_WINDOW = 300.0


@dataclass
class ConsoleConfig:
    """What the console needs; `handoff.console.__main__` builds it from `kefu.config`."""

    postgres_url: str = field(repr=False)
    rasa_url: str
    rasa_token: Optional[str] = field(default=None, repr=False)
    adapter: str = "console"
    adapter_options: dict[str, Any] = field(default_factory=dict, repr=False)
    secure_cookies: Optional[bool] = None  # None: Secure exactly when the request came over https
    relay_interval: float = 0.25
    rating_action: str = RATING_ACTION
    model_path: Optional[Path] = None  # the model `kefu run` serves: the supervisor's thresholds panel


class ApiError(KefuError):
    """An HTTP error with a status, answered as {"detail": ...}."""

    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def same_origin(request: Request) -> bool:
    """True unless the browser says the request comes from another host (CSRF, CSWSH)."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        return referer is None or urlsplit(referer).netloc == request.host
    return origin != "null" and urlsplit(origin).netloc == request.host


def set_cookie(req: Request, resp: HTTPResponse, name: str, value: str, max_age: int, http_only: bool = True) -> None:
    secure = req.app.ctx.config.secure_cookies
    if secure is None:
        secure = req.scheme in ("https", "wss")
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = "/"
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if http_only:
        cookie["httponly"] = True
    if secure:
        cookie["secure"] = True


async def current_session(request: Request) -> Optional[Session]:
    if not hasattr(request.ctx, "session"):
        request.ctx.session = await request.app.ctx.agents.session(request.cookies.get(SESSION_COOKIE))
    return request.ctx.session


async def require_session(request: Request, csrf: bool) -> Session:
    """The logged-in session; for state changes also a matching CSRF token and same origin."""
    session = await current_session(request)
    if session is None:
        raise ApiError("not logged in", 401)
    if csrf:
        sent = request.headers.get("x-csrf-token", "")
        if not same_origin(request) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise ApiError("missing or wrong CSRF token", 403)
    return session


def language(request: Request) -> str:
    return pages.pick_language(
        request.args.get("lang"), request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


def html_page(request: Request, body: str, status: int = 200) -> HTTPResponse:
    resp = response.html(body, status=status)
    if request.args.get("lang") in pages.LANGUAGES:
        set_cookie(request, resp, LANG_COOKIE, request.args.get("lang"), 365 * 86400, http_only=False)
    return resp


def create_app(config: ConsoleConfig, name: str = "kefu_console") -> Sanic:
    """Build the console app; resources open in `before_server_start`, close after stop."""
    app = Sanic(name, register=False, env_prefix="KEFU_SANIC_")
    app.config.REQUEST_MAX_SIZE = MAX_BODY
    app.config.WEBSOCKET_MAX_SIZE = MAX_WS_MESSAGE
    app.config.KEEP_ALIVE_TIMEOUT = 15
    app.ctx.config = config
    app.ctx.login_failures = {}
    app.static("/static", str(STATIC), name="static")

    @app.before_server_start
    async def open_resources(app: Sanic, _loop: Any) -> None:
        pool = AsyncConnectionPool(config.postgres_url, min_size=1, max_size=6, open=False,
                                   kwargs={"autocommit": True})
        await pool.open(wait=True, timeout=15)
        app.ctx.pool = pool
        app.ctx.tickets = TicketStore(config.postgres_url, max_size=6)
        await app.ctx.tickets.open()
        await app.ctx.tickets.migrate()
        app.ctx.agents = AgentStore(pool)
        await app.ctx.agents.migrate()
        app.ctx.links = AdapterLinks(pool)
        await app.ctx.links.migrate()
        app.ctx.rasa = RasaClient(config.rasa_url, config.rasa_token)
        await app.ctx.rasa.open()
        adapter: LiveChatAdapter = adapter_class(config.adapter)(links=app.ctx.links, **config.adapter_options)
        await adapter.start()
        app.ctx.adapter = adapter
        app.ctx.hub = Hub()
        app.ctx.online = {}
        app.ctx.live_cache = LiveCache()
        app.ctx.plan_cache = PlanCache(config.model_path)
        app.ctx.events = TrackerEvents(pool)
        app.ctx.relay = Relay(app.ctx.tickets, app.ctx.events, app.ctx.rasa, adapter, app.ctx.hub,
                              interval=config.relay_interval, rating_action=config.rating_action)
        await app.ctx.relay.migrate()
        app.ctx.stopping = asyncio.Event()
        app.ctx.relay_task = asyncio.ensure_future(app.ctx.relay.run(app.ctx.stopping))
        log.info("console ready: adapter=%s rasa=%s", config.adapter, config.rasa_url)

    @app.after_server_stop
    async def close_resources(app: Sanic, _loop: Any) -> None:
        app.ctx.stopping.set()
        await app.ctx.relay_task
        await app.ctx.adapter.stop()
        await app.ctx.rasa.close()
        await app.ctx.tickets.close()
        await app.ctx.pool.close()

    @app.on_response
    async def security_headers(request: Request, resp: HTTPResponse) -> None:
        for key, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(key, value)
        if request.path.startswith(("/api/", "/handoff/")):
            resp.headers["Cache-Control"] = "no-store"

    @app.exception(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTTPResponse:
        return response.json({"detail": exc.detail}, status=exc.status)

    @app.exception(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> HTTPResponse:
        return response.json({"detail": exc.reason}, status=exc.status)

    @app.exception(NotFound)
    async def not_found(request: Request, exc: NotFound) -> HTTPResponse:
        return response.json({"detail": str(exc)}, status=404)

    @app.exception(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> HTTPResponse:
        log.warning("console: %s", exc)
        return response.json({"detail": str(exc)}, status=502)

    @app.get("/healthz")
    async def healthz(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @app.get("/favicon.ico")
    async def favicon(_: Request) -> HTTPResponse:
        return response.empty()

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        return response.redirect("/console" if await current_session(request) else "/login")

    @app.get("/login")
    async def login_form(request: Request) -> HTTPResponse:
        token = secrets.token_urlsafe(24)
        resp = html_page(request, pages.login_page(language(request), token))
        set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
        return resp

    @app.post("/login")
    async def login(request: Request) -> HTTPResponse:
        form = request.form or {}
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = form.get("csrf", "")
        if not cookie or not same_origin(request) or not hmac.compare_digest(sent.encode(), cookie.encode()):
            raise ApiError("missing or wrong CSRF token", 403)
        name, password = form.get("name", ""), form.get("password", "")
        if _too_many_failures(app, name):
            raise ApiError("too many failed logins; wait a few minutes", 429)
        agent = await app.ctx.agents.authenticate(name, password) if name and password else None
        if agent is None:
            app.ctx.login_failures.setdefault(name, []).append(time.monotonic())
            token = secrets.token_urlsafe(24)
            resp = html_page(request, pages.login_page(language(request), token, failed=True), status=401)
            set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
            return resp
        app.ctx.login_failures.pop(name, None)
        token, _ = await app.ctx.agents.open_session(agent)
        resp = response.redirect("/supervisor" if agent.is_supervisor else "/console", status=303)
        set_cookie(request, resp, SESSION_COOKIE, token, 12 * 3600)
        del resp.cookies[LOGIN_CSRF_COOKIE]
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> HTTPResponse:
        session = await current_session(request)
        if session is not None:
            sent = (request.form or {}).get("csrf", "")
            if not same_origin(request) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise ApiError("missing or wrong CSRF token", 403)
            await app.ctx.agents.close_session(session)
        resp = response.redirect("/login", status=303)
        del resp.cookies[SESSION_COOKIE]
        return resp

    @app.get("/console")
    async def console(request: Request) -> HTTPResponse:
        session = await current_session(request)
        if session is None:
            return response.redirect("/login")
        return html_page(request, pages.console_page(language(request), session.agent.public(), session.csrf,
                                                     domain_intents()))

    @app.get("/supervisor")
    async def supervisor(request: Request) -> HTTPResponse:
        session = await current_session(request)
        if session is None:
            return response.redirect("/login")
        if not session.agent.is_supervisor:
            raise ApiError("supervisors only", 403)
        return html_page(request, pages.supervisor_page(language(request), session.agent.public(), session.csrf,
                                                        domain_intents()))

    from handoff.console import api

    api.register(app)
    return app


def _too_many_failures(app: Sanic, name: str) -> bool:
    now = time.monotonic()
    recent = [t for t in app.ctx.login_failures.get(name, []) if now - t < LOGIN_FAILURE_WINDOW]
    app.ctx.login_failures[name] = recent
    if len(app.ctx.login_failures) > 10_000:
        app.ctx.login_failures.clear()
    return len(recent) >= LOGIN_FAILURES_ALLOWED
