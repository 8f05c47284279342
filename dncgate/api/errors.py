"""JSON errors for the ``/v1`` API: ``{"error": {"code": ..., "message": ...}}``, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from dncgate.errors import DncgateError

log = structlog.get_logger("dncgate.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "body_too_large", 415: "unsupported_media_type",
}


class ApiError(DncgateError):
    """A request answered with ``status`` and the JSON error ``code``/``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception as exc:  # a bug must still answer JSON, and say so in the log
        log.exception("api.internal_error", path=request.path, method=request.method, error=str(exc))
        return error_response(500, "internal_error", "internal error (logged)")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/415 ``ApiError``."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data


def field(data: dict[str, Any], name: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
    value = data.get(name, default)
    if value is None:
        if required:
            raise ApiError(422, "missing_field", f"{name}: required")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(422, "invalid_field", f"{name}: expected {_KIND.get(kind, kind.__name__)}")
    return value


_KIND = {str: "a string", list: "an array", dict: "an object", int: "an integer", bool: "true or false"}
