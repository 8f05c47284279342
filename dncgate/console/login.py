"""Sign-in and sign-out. The sign-in form's CSRF token is a random value in a short-lived cookie
(there is no session yet); a failed sign-in says only that it failed, or that the account is
locked and until when (the lock is no secret to the owner, and a guesser learns nothing new)."""

from __future__ import annotations

import secrets

import structlog
from aiohttp import web

from dncgate.console.sessions import same_token
from dncgate.console.web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Refused,
    context_of,
    form_of,
    language_of,
    render,
    set_cookie,
    viewer_of,
)

log = structlog.get_logger("dncgate.console")
routes = web.RouteTableDef()


async def login_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    context = context_of(request)
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, lang=language_of(request, context.settings.language),
                      login_csrf=token, error=error)
    set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


@routes.post("/console/login")
async def sign_in(request: web.Request) -> web.Response:
    context = context_of(request)
    form = form_of(await request.post())
    if not same_token(form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    name, now = form.get("name", "").strip().lower()[:64], context.clock()
    result = await context.roster.sign_in(name, form.get("password", ""), now)
    if result.operator is None:
        log.warning("console.sign_in_refused", operator=name, reason=result.reason,
                    locked_until=result.locked_until.isoformat() if result.locked_until else None,
                    remote=request.remote)
        error = "locked" if result.locked_until is not None else "refused"
        return await login_page(request, error=error, status=401)
    session = context.sessions.open(result.operator.name, now)
    log.info("console.signed_in", operator=result.operator.name, role=result.operator.role.value,
             remote=request.remote)
    response = web.HTTPSeeOther("/console/")
    set_cookie(request, response, SESSION_COOKIE, session.token)
    response.del_cookie(LOGIN_COOKIE, path="/console")
    raise response


@routes.post("/console/logout")
async def sign_out(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    context_of(request).sessions.close(viewer.session.token)
    log.info("console.signed_out", operator=viewer.operator.name)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


@routes.get("/console/login")
async def _login_get(request: web.Request) -> web.Response:
    return await login_page(request)
