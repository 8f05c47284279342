"""Encoders for the commands a client sends over the event socket.

The byte layout matches what a working client sent to FreeSWITCH 1.11.1 (see
``tests/fixtures/esl/*.tx.raw``): one command line, optional header lines, and
an empty line.  Every argument is checked for CR/LF so a value coming from a
call (a caller ID, a number) can never smuggle in a second command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from dncgate.esl.errors import CommandEncodingError

__all__ = [
    "api",
    "api_command",
    "auth",
    "bgapi",
    "connect",
    "event",
    "exit_",
    "linger",
    "myevents",
    "noevents",
    "nolinger",
    "resume",
    "sendmsg_execute",
    "sendmsg_hangup",
]

MyEventsFormat = Literal["plain", "json", "xml"]

_TOKEN = re.compile(r"[A-Za-z0-9_\-.:]+")
_CAUSE = re.compile(r"[A-Z0-9_]+")
_API_ARG = re.compile(r"\+?[A-Za-z0-9_\-.:]+")  # a token, or a relative time like +35


def _clean(value: str, what: str, *, allow_empty: bool = False) -> str:
    if "\n" in value or "\r" in value or "\x00" in value:
        raise CommandEncodingError(f"{what} must not contain CR, LF or NUL: {value[:60]!r}")
    if not allow_empty and not value.strip():
        raise CommandEncodingError(f"{what} must not be empty")
    return value


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise CommandEncodingError(f"{what} is not a plain token: {value[:60]!r}")
    return value


def _frame(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def connect() -> bytes:
    return _frame("connect")


def auth(password: str) -> bytes:
    return _frame(f"auth {_clean(password, 'password')}")


def myevents(fmt: MyEventsFormat | None = None, uuid: str | None = None) -> bytes:
    parts = ["myevents"]
    if uuid is not None:
        parts.append(_token(uuid, "uuid"))
    if fmt is not None:
        parts.append(_token(fmt, "format"))
    return _frame(" ".join(parts))


def linger(seconds: int | None = None) -> bytes:
    if seconds is None:
        return _frame("linger")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise CommandEncodingError(f"linger seconds must be a non-negative int, got {seconds!r}")
    return _frame(f"linger {seconds}")


def nolinger() -> bytes:
    return _frame("nolinger")


def resume() -> bytes:
    return _frame("resume")


def exit_() -> bytes:
    return _frame("exit")


def noevents() -> bytes:
    return _frame("noevents")


def event(fmt: MyEventsFormat, names: Iterable[str]) -> bytes:
    names = [_token(n, "event name") for n in names]
    if not names:
        raise CommandEncodingError("event needs at least one event name")
    return _frame(" ".join(["event", _token(fmt, "format"), *names]))


def api(command: str) -> bytes:
    return _frame(f"api {_clean(command, 'api command')}")


def api_command(name: str, *args: str) -> str:
    """An API command line (``uuid_kill <uuid> CALL_REJECTED``) whose every part is one plain token.

    For :func:`api` / ``OutboundSession.api``: a value from a call can add no argument (no spaces)
    and no second command (no CR/LF).
    """
    for arg in args:
        if not _API_ARG.fullmatch(arg):
            raise CommandEncodingError(f"API argument is not a plain token: {arg[:60]!r}")
    return " ".join([_token(name, "API command"), *args])


def bgapi(command: str, job_uuid: str | None = None) -> bytes:
    line = f"bgapi {_clean(command, 'bgapi command')}"
    if job_uuid is None:
        return _frame(line)
    return _frame(line, f"Job-UUID: {_token(job_uuid, 'Job-UUID')}")


def sendevent(name: str, headers: Iterable[tuple[str, str]], body: str = "") -> bytes:
    """``sendevent NAME`` with headers and an optional body (mod_event_socket fires it as is):
    ``sendevent("CUSTOM", [("Event-Subclass", "SMS::SEND_MESSAGE"), ...], text)`` sends a message
    through mod_sms. No header name or value may break the frame (CR, LF, NUL)."""
    lines = [f"sendevent {_token(name, 'event name')}"]
    for key, value in headers:
        lines.append(f"{_token(key, 'header name')}: {_clean(value, f'header {key}', allow_empty=True)}")
    if not body:
        return _frame(*lines)
    data = body.encode("utf-8")
    lines.append(f"Content-Length: {len(data)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data


def _sendmsg_line(uuid: str | None) -> str:
    return "sendmsg" if uuid is None else f"sendmsg {_token(uuid, 'uuid')}"


def sendmsg_execute(
    app: str,
    arg: str | None = None,
    *,
    lock: bool = True,
    event_uuid: str | None = None,
    uuid: str | None = None,
    loops: int | None = None,
) -> bytes:
    """``sendmsg`` / ``call-command: execute`` (header order as FreeSWITCH clients send it)."""
    lines = [_sendmsg_line(uuid), "call-command: execute", f"execute-app-name: {_token(app, 'application')}"]
    if arg is not None:
        lines.append(f"execute-app-arg: {_clean(arg, 'application argument', allow_empty=True)}")
    if loops is not None:
        lines.append(f"loops: {int(loops)}")
    if lock:
        lines.append("event-lock: true")
    if event_uuid is not None:
        lines.append(f"Event-UUID: {_token(event_uuid, 'Event-UUID')}")
    return _frame(*lines)


def sendmsg_hangup(cause: str = "NORMAL_CLEARING", *, uuid: str | None = None) -> bytes:
    if not _CAUSE.fullmatch(cause):
        raise CommandEncodingError(f"hangup cause must look like CALL_REJECTED, got {cause[:40]!r}")
    return _frame(_sendmsg_line(uuid), "call-command: hangup", f"hangup-cause: {cause}")
