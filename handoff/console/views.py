"""The HTML pages (agent console, supervisor view), the landing redirect and the health check."""

from __future__ import annotations

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.console import pages
from handoff.console.web import ApiError, Route, add_routes, current_session, html_page, language
from kefu.domain import domain_intents


async def healthz(_: Request) -> HTTPResponse:
    return response.json({"status": "ok"})


async def favicon(_: Request) -> HTTPResponse:
    return response.empty()


async def index(request: Request) -> HTTPResponse:
    return response.redirect("/console" if await current_session(request) else "/login")


async def console(request: Request) -> HTTPResponse:
    session = await current_session(request)
    if session is None:
        return response.redirect("/login")
    return html_page(request, pages.console_page(language(request), session.agent.public(), session.csrf,
                                                 domain_intents()))


async def supervisor(request: Request) -> HTTPResponse:
    session = await current_session(request)
    if session is None:
        return response.redirect("/login")
    if not session.agent.is_supervisor:
        raise ApiError("supervisors only", 403)
    return html_page(request, pages.supervisor_page(language(request), session.agent.public(), session.csrf,
                                                    domain_intents()))


ROUTES: tuple[Route, ...] = (
    ("get", "/healthz", healthz),
    ("get", "/favicon.ico", favicon),
    ("get", "/", index),
    ("get", "/console", console),
    ("get", "/supervisor", supervisor),
)


def register(app: Sanic) -> None:
    add_routes(app, ROUTES)
