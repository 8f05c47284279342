"""Sans-IO AGI codec: bytes in, typed header / replies out.

Nothing here touches a socket. Feed bytes with :meth:`AgiDecoder.feed` (and :meth:`AgiDecoder.feed_eof`),
then pull :meth:`AgiDecoder.read_header` once and :meth:`AgiDecoder.next_event` per reply. Command
encoding lives in :mod:`dncgate.agi.commands`.

Wire facts (Asterisk 22, res/res_agi.c, and the recorded transcripts in tests/fixtures/agi/):

* The header is ``agi_key: value`` lines ending with an empty line. ``agi_network_script`` carries the
  script path *without* a leading slash and with any ``?query``; ``agi_arg_N`` values keep their spaces;
  ``agi_accountcode: `` may be empty.
* Replies: ``200 result=N``, ``200 result=N (data)``, ``200 result=N endpos=M``,
  ``200 result=N (data) endpos=M``, ``510 Invalid or unknown command``,
  ``511 Command Not Permitted on a dead channel or intercept routine``, and the multi-line
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``
  (or the single line ``520 Invalid command syntax.  Proper usage not available.``).
* An unprompted ``HANGUP`` line arrives when the caller hangs up; it may sit in front of the reply to a
  pending command, and that reply still follows.
* Lines end in ``\\n``; a trailing ``\\r`` is tolerated. Bytes are decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl

from dncgate.agi.errors import AgiConnectionLost, AgiLimitExceeded, AgiProtocolError
from dncgate.agi.limits import AgiLimits
from dncgate.derived import Named

__all__ = [
    "AgiDecoder",
    "AgiReply",
    "AgiRequest",
    "HangupNotice",
    "LineBuffer",
    "parse_header_lines",
    "parse_reply_line",
]

_HEADER_KEY = re.compile(r"agi_[A-Za-z0-9_]+")
_ARG_KEY = re.compile(r"agi_arg_([0-9]{1,6})")
_STATUS = re.compile(r"([0-9]{3})(?:([ -])(.*))?", re.DOTALL)
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?[0-9]+))?", re.DOTALL)
_INT = re.compile(r"-?[0-9]+")
# Asterisk's longest integer reply is GET DATA's digits (res_agi.c reads at most 1023 of them);
# endpos= is a sample offset. More digits is no Asterisk, and int() would refuse past 4,300.
MAX_RESULT_DIGITS = 1024
MAX_ENDPOS_DIGITS = 20


def _header() -> Named[AgiRequest, str]:
    """The ``agi_*`` header an :class:`AgiRequest` attribute is named after (``request.channel`` is
    ``agi_channel``; "" when Asterisk did not send it)."""
    return Named(lambda request, name: request.env.get("agi_" + name, ""))


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", errors="replace")


class LineBuffer:
    """Splits a byte stream into lines, refusing any line longer than ``max_line_bytes``."""

    def __init__(self, max_line_bytes: int) -> None:
        self._buf = bytearray()
        self._scan = 0
        self._max = max_line_bytes
        self.eof = False

    def feed(self, data: bytes) -> None:
        if self.eof:
            raise AgiProtocolError("data fed after EOF")
        self._buf += data

    def feed_eof(self) -> None:
        self.eof = True

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet returned as a line."""
        return len(self._buf)

    def next_line(self) -> tuple[str, int] | None:
        """Return ``(line, wire_length)`` for the next complete line, or None if more data is needed.

        Raises AgiLimitExceeded for an over-long line and AgiConnectionLost at EOF inside a line.
        """
        idx = self._buf.find(b"\n", self._scan)
        if idx < 0:
            # Allow one extra byte for a '\r' that may still be followed by '\n'.
            if len(self._buf) > self._max + 1:
                raise AgiLimitExceeded(
                    f"line longer than {self._max} bytes",
                    limit="max_line_bytes", value=len(self._buf), maximum=self._max,
                )
            self._scan = len(self._buf)
            if self.eof:
                if self._buf:
                    raise AgiConnectionLost(f"connection closed inside a line ({len(self._buf)} bytes)")
                raise AgiConnectionLost("connection closed")
            return None
        end = idx - 1 if idx > 0 and self._buf[idx - 1] == 0x0D else idx
        if end > self._max:
            raise AgiLimitExceeded(
                f"line longer than {self._max} bytes", limit="max_line_bytes", value=end, maximum=self._max,
            )
        line = _decode(self._buf[:end])
        del self._buf[: idx + 1]
        self._scan = 0
        return line, idx + 1

    def take_block(self, max_bytes: int, max_lines: int) -> list[str] | None:
        """All lines up to the first empty line, when that block is complete and within limits.

        The fast path for a header block that arrived whole (Asterisk sends it in one write). None
        when the block is incomplete, starts with an empty line, or breaks a limit: then the caller
        reads line by line, which raises the precise error.
        """
        buf = self._buf
        ends = [i for i in (buf.find(b"\n\n"), buf.find(b"\n\r\n")) if i >= 0]
        if not ends:
            return None
        end = min(ends)
        size = end + (2 if buf[end + 1] == 0x0A else 3)
        if size > max_bytes:
            return None
        # One decode for the block: UTF-8 replacement cannot cross a b"\n" (ASCII ends any sequence),
        # so this is the line-by-line decode; a line's byte length is checked only if the block could
        # hold a line over the limit.
        if end > self._max and any(len(item.removesuffix(b"\r")) > self._max for item in buf[:end].split(b"\n")):
            return None
        text = _decode(buf[:end])
        lines = [line.removesuffix("\r") for line in text.split("\n")] if "\r" in text else text.split("\n")
        if len(lines) > max_lines or "" in lines:
            return None
        del buf[:size]
        self._scan = 0
        return lines


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The agi_* header block of one session.

    ``env`` holds every header line as sent (keys keep their ``agi_`` prefix). ``script`` is the
    requested path with a leading slash and without the query (``/check`` for
    ``agi://127.0.0.1/check?x=1``); for classic AGI it is the script file Asterisk ran. ``params`` are the
    query parameters (last one wins; ``+`` stays a literal plus so E.164 numbers survive, ``%XX`` is
    decoded). ``args`` are agi_arg_1..N in order, spaces kept.
    """

    env: dict[str, str]
    args: tuple[str, ...]
    script: str
    params: dict[str, str]
    query_string: str = ""

    def get(self, key: str, default: str | None = None) -> str | None:
        """Header value by name, with or without the ``agi_`` prefix."""
        if not key.startswith("agi_"):
            key = "agi_" + key
        return self.env.get(key, default)

    @property
    def network(self) -> bool:
        """True for FastAGI (``agi_network: yes``), False for classic AGI."""
        return self.env.get("agi_network") == "yes"

    # the headers every door reads, each the agi_ header of its name ("" when Asterisk did not send one)
    request = _header()
    channel = _header()
    uniqueid = _header()
    callerid = _header()
    calleridname = _header()
    dnid = _header()
    context = _header()
    extension = _header()
    accountcode = _header()


def _split_script(raw: str) -> tuple[str, str]:
    path, _, query = raw.partition("?")
    if not path.startswith("/"):
        path = "/" + path
    return path, query


def _parse_query(query: str) -> dict[str, str]:
    if not query:
        return {}
    return dict(_parsed_query(query))  # a copy: the request's own


@lru_cache(maxsize=1024)  # a dialplan sends the same few query strings (the number is an argument)
def _parsed_query(query: str) -> tuple[tuple[str, str], ...]:
    pairs = parse_qsl(query.replace("+", "%2B"), keep_blank_values=True, errors="replace")
    return tuple(dict(pairs).items())


# Header keys already found well-formed -> their argument number (-1: not agi_arg_N). Asterisk sends
# the same few dozen keys in every session, so a set lookup replaces two regular expressions; bounded.
_KNOWN_KEYS: dict[str, int] = {}
_MAX_KNOWN_KEYS = 4096
_NOT_AN_ARG = -1


def _key_number(key: str, line: str) -> int:
    """``key``'s argument number (-1: not an argument), remembered; raises AgiProtocolError for a malformed key."""
    if not _HEADER_KEY.fullmatch(key):
        raise AgiProtocolError(f"not an agi_* header line: {line[:80]!r}")
    number = _NOT_AN_ARG
    if key.startswith("agi_arg_"):
        arg = _ARG_KEY.fullmatch(key)
        if arg is None:
            raise AgiProtocolError(f"bad argument header {key!r}")
        number = int(arg.group(1))
    if len(_KNOWN_KEYS) < _MAX_KNOWN_KEYS:
        _KNOWN_KEYS[key] = number
    return number


def parse_header_lines(lines: list[str]) -> AgiRequest:
    """Build an AgiRequest from the header lines (without the terminating empty line)."""
    env, numbered = _known_header(lines) or _checked_header(lines)
    if "agi_request" not in env:
        raise AgiProtocolError("header block without agi_request")
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise AgiProtocolError("agi_arg_N headers are not numbered 1..N")
    args = tuple(numbered[i] for i in range(1, len(numbered) + 1))
    if "agi_network_script" in env:
        script, query = _split_script(env["agi_network_script"])
    elif env.get("agi_network") == "yes":
        script, query = "/", ""
    else:
        script, query = env["agi_request"], ""
    return AgiRequest(env=env, args=args, script=script, params=_parse_query(query), query_string=query)


def _known_header(lines: list[str]) -> tuple[dict[str, str], dict[int, str]] | None:
    """The header and its arguments when every line is ``key: value`` with a key already seen
    well-formed, each once (what Asterisk sends); None for anything else, which :func:`_checked_header`
    then reads. (A known key has no ":", so splitting at the first ": " is splitting at the first ":"
    and dropping one blank.)"""
    try:
        env = dict(line.split(": ", 1) for line in lines)
    except ValueError:  # a line without ": "
        return None
    if len(env) != len(lines) or not _KNOWN_KEYS.keys() >= env.keys():
        return None
    return env, {_KNOWN_KEYS[key]: value for key, value in env.items() if key.startswith("agi_arg_")}


def _checked_header(lines: list[str]) -> tuple[dict[str, str], dict[int, str]]:
    """The header line by line, raising AgiProtocolError at the first line that is not well-formed."""
    env: dict[str, str] = {}
    numbered: dict[int, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            raise AgiProtocolError(f"not an agi_* header line: {line[:80]!r}")
        number = _KNOWN_KEYS.get(key)
        if number is None:
            number = _key_number(key, line)
        if key in env:
            raise AgiProtocolError(f"duplicate header {key!r}")
        if value.startswith(" "):
            value = value[1:]
        env[key] = value
        if number != _NOT_AN_ARG:
            numbered[number] = value
    return env, numbered


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply from Asterisk.

    ``result`` is the integer after ``result=`` (None for non-200 replies, or when Asterisk put
    non-digits there, as GET DATA can); ``result_text`` is that token verbatim. ``data`` is the text in
    parentheses (None if absent), ``endpos`` the sample offset STREAM FILE and friends report, ``text``
    everything after the status code on the first line, and ``usage`` the body of a multi-line 520.
    """

    code: int
    text: str = ""
    result: int | None = None
    result_text: str = ""
    data: str | None = None
    endpos: int | None = None
    usage: str = ""
    lines: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """The unprompted ``HANGUP`` line: the caller hung up. A pending command's reply still follows."""


HANGUP_NOTICE = HangupNotice()


def parse_reply_line(line: str) -> AgiReply | HangupNotice:
    """Parse one single-line reply (not the continuation form ``NNN-``)."""
    if line == "HANGUP":
        return HANGUP_NOTICE
    m = _STATUS.fullmatch(line)
    if not m or m.group(2) == "-":
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(m.group(1))
    text = m.group(3) or ""
    if code != 200:
        return AgiReply(code=code, text=text, lines=(line,))
    r = _RESULT.fullmatch(text)
    if not r:
        raise AgiProtocolError(f"200 reply without result=: {line[:80]!r}")
    result_text, endpos_text = r.group(1), r.group(3)
    if len(result_text.removeprefix("-")) > MAX_RESULT_DIGITS:
        raise AgiProtocolError(f"result= longer than {MAX_RESULT_DIGITS} characters: {line[:80]!r}")
    if endpos_text is not None and len(endpos_text.removeprefix("-")) > MAX_ENDPOS_DIGITS:
        raise AgiProtocolError(f"endpos= longer than {MAX_ENDPOS_DIGITS} digits: {line[:80]!r}")
    result = int(result_text) if _INT.fullmatch(result_text) else None
    endpos = int(endpos_text) if endpos_text is not None else None
    return AgiReply(
        code=200, text=text, result=result, result_text=result_text, data=r.group(2), endpos=endpos,
        lines=(line,),
    )


@lru_cache(maxsize=256)
def _parsed_reply(line: str) -> AgiReply | HangupNotice:
    """``parse_reply_line`` of a reply without data: the replies are immutable, so one serves every session.
    (A line that does not parse raises each time: exceptions are not cached.)"""
    return parse_reply_line(line)


class AgiDecoder:
    """Stateful decoder for one AGI connection: the header block first, then replies."""

    def __init__(self, limits: AgiLimits | None = None) -> None:
        self.limits = limits or AgiLimits()
        self._lines = LineBuffer(self.limits.max_line_bytes)
        self._header_lines: list[str] = []
        self._header_bytes = 0
        self._request: AgiRequest | None = None
        self._usage_code: int | None = None
        self._usage: list[str] = []

    def feed(self, data: bytes) -> None:
        self._lines.feed(data)

    def feed_eof(self) -> None:
        self._lines.feed_eof()

    @property
    def eof(self) -> bool:
        return self._lines.eof

    @property
    def header_started(self) -> bool:
        """True once any header byte has been seen (to tell a silent probe from a broken peer)."""
        return bool(self._header_lines) or self._lines.pending > 0 or self._request is not None

    @property
    def request(self) -> AgiRequest | None:
        return self._request

    def read_header(self) -> AgiRequest | None:
        """Return the request once the empty line arrives; None while more bytes are needed."""
        if self._request is not None:
            return self._request
        lim = self.limits
        if not self._header_lines:
            block = self._lines.take_block(lim.max_header_bytes, lim.max_header_lines)
            if block is not None:
                self._request = parse_header_lines(block)
                return self._request
        while True:
            got = self._lines.next_line()
            if got is None:
                return None
            line, size = got
            self._header_bytes += size
            if self._header_bytes > lim.max_header_bytes:
                raise AgiLimitExceeded(
                    f"header block larger than {lim.max_header_bytes} bytes",
                    limit="max_header_bytes", value=self._header_bytes, maximum=lim.max_header_bytes,
                )
            if line == "":
                if not self._header_lines:
                    raise AgiProtocolError("empty header block")
                self._request = parse_header_lines(self._header_lines)
                self._header_lines = []
                return self._request
            if len(self._header_lines) >= lim.max_header_lines:
                raise AgiLimitExceeded(
                    f"more than {lim.max_header_lines} header lines",
                    limit="max_header_lines", value=len(self._header_lines) + 1, maximum=lim.max_header_lines,
                )
            self._header_lines.append(line)

    def next_event(self) -> AgiReply | HangupNotice | None:
        """Return the next complete reply or HANGUP notice; None while more bytes are needed."""
        if self._request is None:
            raise AgiProtocolError("replies requested before the header block was read")
        while True:
            got = self._lines.next_line()
            if got is None:
                return None
            line, _ = got
            if self._usage_code is not None:
                event = self._usage_line(self._usage_code, line)
                if event is not None:
                    return event
                continue
            # group 2 of _STATUS is the character after the three digits: only "NNN-" starts a usage block
            m = _STATUS.fullmatch(line) if line[3:4] == "-" else None
            if m and m.group(2) == "-":
                self._usage_code = int(m.group(1))
                self._usage = [line]
                continue
            if len(line) <= 64 and "(" not in line:  # no data: one of a few lines ("200 result=1"), parsed once
                return _parsed_reply(line)
            return parse_reply_line(line)

    def _usage_line(self, code: int, line: str) -> AgiReply | None:
        self._usage.append(line)
        if line.startswith(f"{code} "):
            first, body = self._usage[0], self._usage[1:-1]
            lines = tuple(self._usage)
            self._usage_code, self._usage = None, []
            return AgiReply(code=code, text=first[4:], usage="\n".join(body), lines=lines)
        if len(self._usage) > self.limits.max_usage_lines:
            raise AgiLimitExceeded(
                f"multi-line {code} reply longer than {self.limits.max_usage_lines} lines",
                limit="max_usage_lines", value=len(self._usage), maximum=self.limits.max_usage_lines,
            )
        return None
