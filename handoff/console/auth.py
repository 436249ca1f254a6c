"""Logging in and out: the login form (double-submit CSRF cookie), failed-login throttling, sessions.

Failed logins are limited per account name and per client IP (`users.LoginFailures`, in PostgreSQL);
the client IP is the peer's address, or the proxy's forwarded address only when the console is
configured to trust its proxy (Sanic's `KEFU_SANIC_PROXIES_COUNT`, `_REAL_IP_HEADER`, `_FORWARDED_SECRET`).
"""

from __future__ import annotations

import math
import secrets

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.console import pages
from handoff.console.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ApiError,
    Route,
    add_routes,
    check_csrf,
    current_session,
    html_page,
    language,
    set_cookie,
)


def _login_page(request: Request, failed: bool = False) -> HTTPResponse:
    """The form with a fresh double-submit token (as a hidden field and a cookie)."""
    token = secrets.token_urlsafe(24)
    resp = html_page(request, pages.login_page(language(request), token, failed=failed),
                     status=401 if failed else 200)
    set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
    return resp


async def login_form(request: Request) -> HTTPResponse:
    return _login_page(request)


async def login(request: Request) -> HTTPResponse:
    app = request.app
    form = request.form or {}
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie:
        raise ApiError("missing or wrong CSRF token", 403)
    check_csrf(request, form.get("csrf", ""), cookie)
    name, password = form.get("name", ""), form.get("password", "")
    attempt, wait = await app.ctx.agents.failures.begin(name, client_ip(request))
    if attempt is None:
        return _too_many_failures(wait)
    agent = await app.ctx.agents.authenticate(name, password) if name and password else None
    if agent is None:
        return _login_page(request, failed=True)
    await app.ctx.agents.failures.succeeded(attempt)
    token, _ = await app.ctx.agents.open_session(agent)
    resp = response.redirect("/supervisor" if agent.is_supervisor else "/console", status=303)
    set_cookie(request, resp, SESSION_COOKIE, token, 12 * 3600)
    del resp.cookies[LOGIN_CSRF_COOKIE]
    return resp


def client_ip(request: Request) -> str:
    """The forwarded client address if a trusted proxy is configured (Sanic ignores the headers otherwise)."""
    return request.remote_addr or request.ip or "unknown"


def _too_many_failures(wait: float) -> HTTPResponse:
    seconds = max(1, math.ceil(wait))
    minutes = math.ceil(seconds / 60)
    detail = f"too many failed logins; wait {minutes} minute{'s' if minutes > 1 else ''} and try again"
    return response.json({"detail": detail}, status=429, headers={"Retry-After": str(seconds)})


async def logout(request: Request) -> HTTPResponse:
    session = await current_session(request)
    if session is not None:
        check_csrf(request, (request.form or {}).get("csrf", ""), session.csrf)
        await request.app.ctx.agents.close_session(session)
    resp = response.redirect("/login", status=303)
    del resp.cookies[SESSION_COOKIE]
    return resp


ROUTES: tuple[Route, ...] = (
    ("get", "/login", login_form),
    ("post", "/login", login),
    ("post", "/logout", logout),
)


def register(app: Sanic) -> None:
    add_routes(app, ROUTES)
