"""Logging in and out: the login form (double-submit CSRF cookie), failed-login throttling, sessions."""

from __future__ import annotations

import secrets
import time

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

LOGIN_FAILURES_ALLOWED = 10
LOGIN_FAILURE_WINDOW = 300.0


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
    if _too_many_failures(app, name):
        raise ApiError("too many failed logins; wait a few minutes", 429)
    agent = await app.ctx.agents.authenticate(name, password) if name and password else None
    if agent is None:
        app.ctx.login_failures.setdefault(name, []).append(time.monotonic())
        return _login_page(request, failed=True)
    app.ctx.login_failures.pop(name, None)
    token, _ = await app.ctx.agents.open_session(agent)
    resp = response.redirect("/supervisor" if agent.is_supervisor else "/console", status=303)
    set_cookie(request, resp, SESSION_COOKIE, token, 12 * 3600)
    del resp.cookies[LOGIN_CSRF_COOKIE]
    return resp


async def logout(request: Request) -> HTTPResponse:
    session = await current_session(request)
    if session is not None:
        check_csrf(request, (request.form or {}).get("csrf", ""), session.csrf)
        await request.app.ctx.agents.close_session(session)
    resp = response.redirect("/login", status=303)
    del resp.cookies[SESSION_COOKIE]
    return resp


def _too_many_failures(app: Sanic, name: str) -> bool:
    now = time.monotonic()
    recent = [t for t in app.ctx.login_failures.get(name, []) if now - t < LOGIN_FAILURE_WINDOW]
    app.ctx.login_failures[name] = recent
    if len(app.ctx.login_failures) > 10_000:
        app.ctx.login_failures.clear()
    return len(recent) >= LOGIN_FAILURES_ALLOWED


ROUTES: tuple[Route, ...] = (
    ("get", "/login", login_form),
    ("post", "/login", login),
    ("post", "/logout", logout),
)


def register(app: Sanic) -> None:
    app.ctx.login_failures = {}
    add_routes(app, ROUTES)
