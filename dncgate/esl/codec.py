"""Sans-IO event-socket decoder: feed bytes in, get :class:`Message` frames out.

Framing (mod_event_socket): a header block of ``Name: value`` lines ended by an
empty line; when the block has ``Content-Length: N`` exactly N body bytes
follow.  Header values are URL-encoded.  Event bodies are parsed according to
their Content-Type: ``text/event-plain`` is itself a URL-encoded header block
(optionally with its own Content-Length body), ``text/event-json`` is a JSON
object whose ``_body`` key carries the event body.

All limits are enforced *before* buffering the data they guard, so a hostile
``Content-Length: 99999999999`` is refused without allocating anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from dncgate.esl.errors import (
    EslProtocolError,
    IncompleteMessageError,
    InvalidBodyError,
    InvalidContentLengthError,
    LimitExceededError,
    MalformedHeaderError,
)
from dncgate.esl.messages import EVENT_JSON, EVENT_PLAIN, Event, Headers, Message

__all__ = ["EslDecoder", "Limits", "decode_event", "parse_header_block"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard bounds on what a peer may make us buffer."""

    max_line_bytes: int = 8 * 1024
    max_headers: int = 512
    max_body_bytes: int = 4 * 1024 * 1024


DEFAULT_LIMITS = Limits()

_FORBIDDEN_NAME_CHARS = frozenset(" \t\r\n:\x00")
# The common case, checked in one C-level match: printable ASCII without space or colon.
_PLAIN_NAME = re.compile(r"[!-9;-~]+")


def _parse_header_line(raw: bytes, limits: Limits) -> tuple[str, str]:
    if len(raw) > limits.max_line_bytes:
        raise LimitExceededError("header line bytes", len(raw), limits.max_line_bytes)
    line = raw.decode("utf-8", errors="replace")
    name, sep, value = line.partition(":")
    if not sep or not name or (
        not _PLAIN_NAME.fullmatch(name)
        and any(c in _FORBIDDEN_NAME_CHARS or not c.isprintable() for c in name)
    ):
        raise MalformedHeaderError(f"not a header line: {line[:80]!r}")
    if value.startswith(" "):
        value = value[1:]
    return name, unquote(value, errors="replace") if "%" in value else value


# A whole header block of plain names, "\n" line ends and no empty line, checked in C: FreeSWITCH's
# every block. Anything else (CR, non-ASCII names, a bad line, a limit crossed) takes the line-by-line
# path, which gives the same pairs and raises the exact error.
# Lines then the last one, possessive (each line can match only one way): twice as fast as
# ``line(\nline)*``, which keeps a backtracking point per line.
_PLAIN_BLOCK = re.compile(rb"(?:[!-9;-~]++:[^\n]*+\n)*+[!-9;-~]++:[^\n]*+")


def _plain_block(block: bytes, limits: Limits) -> bool:
    """True when ``block`` (header lines joined by ``\n``, no empty line) is plain and within the
    limits, so :meth:`Headers.from_block` reads it in place; False when the line-by-line path must
    decide (it raises for what this refuses to judge)."""
    if b"\r" in block or block.count(b"\n") >= limits.max_headers:
        return False
    if len(block) > limits.max_line_bytes and max(map(len, block.split(b"\n"))) > limits.max_line_bytes:
        return False
    return _PLAIN_BLOCK.fullmatch(block) is not None


def _last_pair(block: bytes) -> tuple[str, str]:
    """The last line of a plain block as (name, value as sent)."""
    name, _, value = block[block.rfind(b"\n") + 1 :].partition(b":")
    if value.startswith(b" "):
        value = value[1:]
    return name.decode("ascii"), value.decode("utf-8", errors="replace")


def _content_length(headers: Headers, limits: Limits) -> int:
    raw = headers.get_ci("Content-Length")
    return 0 if raw is None else _length_value(raw, limits)


def _length_value(raw: str, limits: Limits) -> int:
    """A Content-Length's value as a byte count; raises for one that is no count or over the limit."""
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidContentLengthError(f"bad Content-Length {raw[:40]!r}")
    # Refuse absurd digit strings before converting them.
    if len(text) > 20:
        raise LimitExceededError("Content-Length", 10**20, limits.max_body_bytes)
    length = int(text)
    if length > limits.max_body_bytes:
        raise LimitExceededError("Content-Length", length, limits.max_body_bytes)
    return length


def parse_header_block(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Headers, bytes]:
    """Parse a complete header block (as found in a text/event-plain body).

    Returns the headers and whatever follows the empty line, trimmed to the
    block's own Content-Length when it has one.
    """
    headers, rest, _declared = _header_block(data, limits)
    return headers, rest


def _header_block(data: bytes, limits: Limits) -> tuple[Headers, bytes, bool]:
    """``parse_header_block``'s headers and rest, and whether the block declared a body."""
    blank = data.find(b"\n\n")
    if blank > 0 and _plain_block(block := data[:blank], limits):
        return _with_body(Headers.from_block(block), _last_pair(block), data[blank + 2 :], limits)
    pairs, pos = header_lines(data, limits)
    return _with_body(Headers(pairs), pairs[-1] if pairs else None, data[pos:], limits)


def header_lines(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[list[tuple[str, str]], int]:
    """The header block at the start of ``data`` line by line (leading blank lines skipped, CR LF
    too): its pairs and the offset after its empty line. Raises for a bad line or a limit crossed."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        if nl < 0:
            nl = end
        raw = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if not raw:
            if pairs:
                break
            continue
        if len(pairs) >= limits.max_headers:
            raise LimitExceededError("header count", len(pairs) + 1, limits.max_headers)
        pairs.append(_parse_header_line(raw, limits))
    return pairs, min(pos, end)


def _with_body(headers: Headers, last: tuple[str, str] | None, rest: bytes,
               limits: Limits) -> tuple[Headers, bytes, bool]:
    """``headers`` and what follows them, trimmed to the body's Content-Length when ``last`` (the
    block's last header) is one. FreeSWITCH writes an event's body length as its last header
    (``switch_event_serialize``); a Content-Length among the others is a header the event carries,
    not its body's: mod_sms's ``SMS::DELIVERY_REPORT`` copies its message's (``Content-Length: 13``
    in the middle, no body, recorded on a real 1.11.1)."""
    if last is None or last[0].lower() != "content-length":
        return headers, rest, False
    length = _length_value(last[1], limits)
    if len(rest) < length:
        raise InvalidBodyError(f"event body shorter than its Content-Length ({len(rest)} < {length})")
    return headers, rest[:length], True


class _Pairs(list[tuple[str, Any]]):
    """A JSON object kept as its ordered (name, value) pairs, repeats included."""


def _json_pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    # Keep every pair, in order; Headers decides (first wins) and records repeats.
    return _Pairs(pairs)


# FreeSWITCH's event-json arrays are flat; a value nested deeper than this is refused (it would
# otherwise exhaust the stack while being flattened).
_MAX_JSON_NESTING = 8


def _json_value(value: Any, depth: int = 0) -> str:
    """One JSON value as the string the plain format would carry.

    Array headers (e.g. ``variable_DP_MATCH``) are JSON arrays in event-json but
    ``ARRAY::a|:b`` in event-plain; we use the plain spelling so both formats
    give the same header value.
    """
    if isinstance(value, str):
        return value
    if depth >= _MAX_JSON_NESTING:
        raise InvalidBodyError(f"text/event-json value nested deeper than {_MAX_JSON_NESTING} levels")
    if isinstance(value, _Pairs):
        try:
            return json.dumps(dict(value))
        except RecursionError as exc:
            raise InvalidBodyError("text/event-json value nested too deeply") from exc
    if isinstance(value, list):
        return "ARRAY::" + "|:".join(_json_value(item, depth + 1) for item in value)
    if value is None:
        return ""
    return json.dumps(value)


def decode_event(content_type: str, body: bytes, limits: Limits = DEFAULT_LIMITS) -> Event:
    """Parse the body of a ``text/event-plain`` or ``text/event-json`` frame."""
    if content_type == EVENT_PLAIN:
        headers, rest, has_body = _header_block(body, limits)
        if not headers:
            raise InvalidBodyError("empty text/event-plain body")
        return Event("plain", headers, rest.decode("utf-8", errors="replace") if has_body else None)
    if content_type == EVENT_JSON:
        try:
            parsed = json.loads(body, object_pairs_hook=_json_pairs_hook)
        except (ValueError, RecursionError) as exc:
            raise InvalidBodyError(f"text/event-json body is not JSON: {exc}") from exc
        if not isinstance(parsed, _Pairs):
            raise InvalidBodyError("text/event-json body is not a JSON object")
        if len(parsed) > limits.max_headers:
            raise LimitExceededError("header count", len(parsed), limits.max_headers)
        pairs: list[tuple[str, str]] = []
        event_body: str | None = None
        for name, value in parsed:
            if name == "_body":
                if event_body is None:
                    event_body = _json_value(value)
                continue
            pairs.append((name, _json_value(value)))
        return Event("json", Headers(pairs), event_body)
    raise InvalidBodyError(f"not an event content type: {content_type!r}")


class EslDecoder:
    """Incremental frame decoder.  Not thread-safe; one per connection.

    ``feed(data)`` returns the frames completed by ``data`` (possibly none).
    ``feed_eof()`` raises :class:`IncompleteMessageError` if the stream stopped
    inside a frame.  After any error the decoder refuses further input.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._scan = 0  # offset in _buf already searched for b"\n"
        self._pairs: list[tuple[str, str]] = []
        self._headers: Headers | None = None  # set while waiting for a body
        self._body_len = 0
        self._failed: EslProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """True when no partial frame is buffered."""
        return self._headers is None and not self._pairs and not self._buf.strip(b"\r\n")

    def feed(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise EslProtocolError(f"decoder already failed: {self._failed}") from self._failed
        self._buf += data
        out: list[Message] = []
        try:
            while True:
                message = self._next()
                if message is None:
                    return out
                out.append(message)
        except EslProtocolError as exc:
            self._fail(exc)
            raise

    def feed_eof(self) -> None:
        if not self.idle:
            exc = IncompleteMessageError(
                "stream ended inside a body" if self._headers is not None else "stream ended inside headers"
            )
            self._fail(exc)
            raise exc

    def _fail(self, exc: EslProtocolError) -> None:
        """Refuse further input; keep what went wrong as a record only (never raised, so no
        traceback: one would hold the frames that decoded the failing frame, bodies included)."""
        self._failed = EslProtocolError(str(exc))
        self._buf.clear()
        self._pairs = []
        self._headers = None

    def _next(self) -> Message | None:
        limits = self._limits
        if self._headers is None and not self._pairs and self._buf and self._buf[0] not in (10, 13):  # LF, CR
            self._whole_block()
        while self._headers is None:
            nl = self._buf.find(b"\n", self._scan)
            if nl < 0:
                if len(self._buf) > limits.max_line_bytes:
                    raise LimitExceededError("header line bytes", len(self._buf), limits.max_line_bytes)
                self._scan = len(self._buf)
                return None
            raw = bytes(self._buf[:nl]).rstrip(b"\r")
            del self._buf[: nl + 1]
            self._scan = 0
            if raw:
                if len(self._pairs) >= limits.max_headers:
                    raise LimitExceededError("header count", len(self._pairs) + 1, limits.max_headers)
                self._pairs.append(_parse_header_line(raw, limits))
            elif self._pairs:
                headers = Headers(self._pairs)
                self._pairs = []
                self._body_len = _content_length(headers, limits)
                self._headers = headers
            # else: stray blank line between frames, skip it.
        return self._frame()

    def _whole_block(self) -> None:
        """A frame's whole header block already buffered, taken at once (``_plain_block``); else
        nothing is consumed and the line-by-line loop goes on as if this had not been tried."""
        blank = self._buf.find(b"\n\n")
        if blank <= 0 or not _plain_block(block := bytes(self._buf[:blank]), self._limits):
            return
        del self._buf[: blank + 2]
        self._scan = 0
        headers = Headers.from_block(block)
        self._body_len = _content_length(headers, self._limits)
        self._headers = headers

    def _frame(self) -> Message | None:
        """The frame whose headers are parsed, once its body is buffered."""
        headers = self._headers
        if headers is None or len(self._buf) < self._body_len:
            return None
        body = bytes(self._buf[: self._body_len])
        del self._buf[: self._body_len]
        self._headers = None
        self._body_len = 0
        content_type = headers.get_ci("Content-Type") or ""
        event = None
        if content_type in (EVENT_PLAIN, EVENT_JSON):
            event = decode_event(content_type, body, self._limits)
        return Message(headers, body, event)
