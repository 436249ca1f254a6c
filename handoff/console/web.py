"""What every console route shares: sessions and CSRF checks, cookies, JSON bodies, errors, headers.

Security model: server-side sessions (random cookie token, HttpOnly, SameSite=Strict, Secure on
https or when configured); every state-changing request needs the session's CSRF token (header
`X-CSRF-Token` for the JSON API, form field for the login/logout forms, where the login form uses a
double-submit cookie) and, if the browser sends one, a same-host Origin; WebSocket handshakes need
the session cookie and a same-host Origin. Bodies are capped (`REQUEST_MAX_SIZE`), and a strict
Content-Security-Policy forbids inline script.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Awaitable, Callable, Optional, Sequence
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.console import pages
from handoff.console.users import Agent, Session
from kefu.errors import BadInput, KefuError, NotFound, StoreUnavailable
from kefu.inbound import loads_json

log = logging.getLogger(__name__)

SESSION_COOKIE = "kefu_session"
LOGIN_CSRF_COOKIE = "kefu_login_csrf"
LANG_COOKIE = "kefu_lang"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send `Origin: null` on form posts
}

# (Sanic decorator name, URI, handler): each route module lists its routes as a table
Route = tuple[str, str, Callable[..., Awaitable[Any]]]


class ApiError(KefuError):
    """An HTTP error with a status, answered as {"detail": ...}."""

    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def add_routes(app: Sanic, routes: Sequence[Route]) -> None:
    """Register a module's route table with the same decorators (`app.get`, ...) a literal listing uses."""
    for method, uri, handler in routes:
        getattr(app, method)(uri)(handler)


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


def check_csrf(request: Request, sent: str, expected: str) -> None:
    """403 unless the request is same-origin and carries the expected token (compared in constant time)."""
    if not same_origin(request) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError("missing or wrong CSRF token", 403)


async def require_session(request: Request, csrf: bool) -> Session:
    """The logged-in session; for state changes also a matching CSRF token and same origin."""
    session = await current_session(request)
    if session is None:
        raise ApiError("not logged in", 401)
    if csrf:
        check_csrf(request, request.headers.get("x-csrf-token", ""), session.csrf)
    return session


def require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise ApiError("supervisors only", 403)


def language(request: Request) -> str:
    return pages.pick_language(
        request.args.get("lang"), request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


def html_page(request: Request, body: str, status: int = 200) -> HTTPResponse:
    resp = response.html(body, status=status)
    if request.args.get("lang") in pages.LANGUAGES:
        set_cookie(request, resp, LANG_COOKIE, request.args.get("lang"), 365 * 86400, http_only=False)
    return resp


def body_json(request: Request) -> dict[str, Any]:
    """The JSON object body of an API call (400 for anything else, deep nesting included; Sanic caps the size)."""
    if (request.content_type or "").split(";")[0].strip() != "application/json":
        raise ApiError("the body must be application/json", 415)
    try:
        data = loads_json(request.body or b"")  # also 400 for deep nesting, which json.loads fails on with a 500
    except BadInput as exc:
        raise ApiError(exc.reason, 400) from exc
    if not isinstance(data, dict):
        raise ApiError("the body must be a JSON object", 400)
    return data


def text_field(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(f"{key} must be a non-empty string", 400)
    if len(value) > limit:
        raise ApiError(f"{key} is longer than {limit} characters", 400)
    return value


def int_arg(raw: Optional[str], default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadInput("after must be a non-negative integer") from exc
    if not 0 <= value < 2**62:
        raise BadInput("after must be a non-negative integer")
    return value


async def security_headers(request: Request, resp: HTTPResponse) -> None:
    for key, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(key, value)
    if request.path.startswith(("/api/", "/handoff/")):
        resp.headers["Cache-Control"] = "no-store"


async def api_error(request: Request, exc: ApiError) -> HTTPResponse:
    return response.json({"detail": exc.detail}, status=exc.status)


async def bad_input(request: Request, exc: BadInput) -> HTTPResponse:
    return response.json({"detail": exc.reason}, status=exc.status)


async def not_found(request: Request, exc: NotFound) -> HTTPResponse:
    return response.json({"detail": str(exc)}, status=404)


async def unavailable(request: Request, exc: StoreUnavailable) -> HTTPResponse:
    log.warning("console: %s", exc)
    return response.json({"detail": str(exc)}, status=502)


def install(app: Sanic) -> None:
    """Security headers on every response; our errors answered as {"detail": ...} with their status."""
    app.on_response(security_headers)
    for exc_class, handler in ((ApiError, api_error), (BadInput, bad_input), (NotFound, not_found),
                               (StoreUnavailable, unavailable)):
        app.exception(exc_class)(handler)
