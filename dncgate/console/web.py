"""The console's HTTP side: sign-in, sessions, CSRF, roles and tenant scopes, rendering.

Every ``/console`` request but the sign-in page and the stylesheet needs a session: without one,
a GET is sent to the sign-in page (303), a POST refused (403). Every POST carries the session's
CSRF token (``csrf`` field) and comes from an operator whose role may act; the tenant it names
must be one the operator sees, or the answer is 404, as for a record of another tenant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import structlog
from aiohttp import web

from dncgate.console.context import ConsoleContext
from dncgate.console.i18n import LANGUAGES, translator
from dncgate.console.sessions import Session, same_token
from dncgate.errors import DncgateError, StoreError
from dncgate.operators import Operator

log = structlog.get_logger("dncgate.console")
CONSOLE = web.AppKey("dncgate_console", ConsoleContext)
SESSION_COOKIE = "dncgate_session"
LOGIN_COOKIE = "dncgate_login"
LANG_COOKIE = "dncgate_lang"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN = frozenset({"/console/login", "/console/static/console.css"})
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("dncgate.console", "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                lstrip_blocks=True)


class Refused(DncgateError):
    """Answer the request with this status and message (403, 404, 409, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in operator of a request, its session and language."""

    operator: Operator
    session: Session
    lang: str

    @property
    def actor(self) -> str:
        return f"console:{self.operator.name}"


VIEWER = web.RequestKey("dncgate_console_viewer", Viewer)


def context_of(request: web.Request) -> ConsoleContext:
    return request.app[CONSOLE]


def viewer_of(request: web.Request) -> Viewer:
    return request[VIEWER]


def language_of(request: web.Request, default: str) -> str:
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if asked in LANGUAGES:
        return asked
    accept = request.headers.get("Accept-Language", "").lower()
    return "zh" if accept.startswith("zh") else default


def tenant_of(request: web.Request, viewer: Viewer, form: dict[str, str] | None = None) -> str:
    """The tenant the request names (query or form), default the operator's first; 404 if not visible."""
    context = context_of(request)
    visible = context.visible_tenants(viewer.operator)
    asked = (form or {}).get("tenant") or request.query.get("tenant") or (visible[0] if visible else "")
    if asked not in visible:
        raise Refused(404, "no such tenant")
    return asked


def secure(request: web.Request) -> bool:
    return context_of(request).settings.secure_cookies or request.secure


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, path="/console", httponly=True, samesite="Strict", secure=secure(request),
                        max_age=max_age)


def render(request: web.Request, template: str, *, status: int = 200, lang: str | None = None,
           **values: Any) -> web.Response:
    viewer = request.get(VIEWER)
    language = lang or (viewer.lang if viewer else "en")
    context = context_of(request)
    tenants = context.visible_tenants(viewer.operator) if viewer else []
    page = _TEMPLATES.get_template(template).render(
        _=translator(language), lang=language, viewer=viewer, tenants=tenants,
        csrf=viewer.session.csrf if viewer else "", path=request.path, **values)
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers.update(_HEADERS)
    if request.query.get("lang") in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, request.query["lang"], max_age=365 * 86400)
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/console"):
        return await handler(request)
    context = context_of(request)
    lang = language_of(request, context.settings.language)
    try:
        if request.path not in _OPEN:
            viewer = await _signed_in(request, context, lang)
            if viewer is None:
                if request.method == "POST":
                    raise Refused(403, "sign in first")
                raise web.HTTPSeeOther("/console/login")
            request[VIEWER] = viewer
            if request.method == "POST":
                await _check_post(request, viewer)
        return await handler(request)
    except Refused as exc:
        log.warning("console.refused", path=request.path, status=exc.status, reason=exc.message,
                    operator=getattr(request.get(VIEWER), "actor", None))
        return render(request, "refused.html", status=exc.status, lang=lang, message=exc.message)
    except StoreError as exc:
        log.error("console.store_unavailable", path=request.path, error=str(exc))
        return render(request, "refused.html", status=503, lang=lang, message=f"store unavailable: {exc}")


async def _signed_in(request: web.Request, context: ConsoleContext, lang: str) -> Viewer | None:
    session = context.sessions.get(request.cookies.get(SESSION_COOKIE, ""), context.clock())
    if session is None:
        return None
    operator = await context.operators.operator(session.operator)  # removed or changed since: read every time
    if operator is None:
        context.sessions.close(session.token)
        return None
    return Viewer(operator, session, lang)


async def _check_post(request: web.Request, viewer: Viewer) -> None:
    form = await request.post()
    if not same_token(str(form.get("csrf", "")), viewer.session.csrf):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    if request.path != "/console/logout" and not viewer.operator.role.can_act():
        raise Refused(403, "a viewer cannot act")


def form_of(data: Any) -> dict[str, str]:
    return {str(k): str(v)[:2000] for k, v in data.items() if isinstance(v, str)}


async def static_css(_: web.Request) -> web.Response:
    css = (resources.files("dncgate.console") / "static" / "console.css").read_text(encoding="utf-8")
    return web.Response(text=css, content_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                                     "X-Content-Type-Options": "nosniff"})


async def _home(_: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/")


def install_console(app: web.Application, context: ConsoleContext) -> None:
    """Mount the console on ``app`` (the ``[http]`` listener's)."""
    from dncgate.console import casework, login, pages

    app[CONSOLE] = context
    app.middlewares.append(guard)
    app.router.add_get("/", _home)
    app.router.add_get("/console/static/console.css", static_css)
    for table in (login.routes, pages.routes, casework.routes):
        app.router.add_routes(table)
