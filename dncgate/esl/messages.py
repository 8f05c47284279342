"""Parsed event-socket messages: header blocks, frames, events, channel data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from dncgate.derived import Derived
from dncgate.esl.errors import CommandError, UnexpectedMessageError

EventFormat = Literal["plain", "json"]

# Content types FreeSWITCH's mod_event_socket sends.
AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
EVENT_PLAIN = "text/event-plain"
EVENT_JSON = "text/event-json"
EVENT_XML = "text/event-xml"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"
LOG_DATA = "log/data"


class Headers(Mapping[str, str]):
    """An ordered header block that tolerates repeated names.

    FreeSWITCH repeats some headers (``Hangup-Cause`` appears twice in
    CHANNEL_HANGUP_COMPLETE, in both the plain and the JSON format).  Lookup is
    deterministic: **the first occurrence wins**; every value is kept in
    :meth:`get_all` and names seen more than once are listed in
    :attr:`duplicates`.  Lookup is case-sensitive; :meth:`get_ci` is not.

    :meth:`url_encoded` keeps the values as sent and decodes each when it is read: a door reads a
    few of an event's two hundred headers, and decoding the rest was most of the codec's time.
    """

    __slots__ = ("_decoded", "_encoded", "_first", "_lower", "_pairs", "duplicates")

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), *, _encoded: bool = False) -> None:
        self._pairs: tuple[tuple[str, str], ...] = tuple(pairs)
        self._encoded = _encoded
        self._decoded: tuple[tuple[str, str], ...] | None = None if _encoded else self._pairs
        first = dict(self._pairs)  # built in C; right as it is when no name repeats (almost every block)
        dups: dict[str, list[str]] = {}
        if len(first) < len(self._pairs):
            first = {}
            for name, value in self._pairs:
                if name in first:
                    dups.setdefault(name, [first[name]]).append(value)
                else:
                    first[name] = value
        # The first of each name case-insensitively: reversed, so an earlier pair overwrites a later one.
        self._lower = {name.lower(): value for name, value in reversed(self._pairs)}
        self._first = first
        self.duplicates: Mapping[str, tuple[str, ...]] = {
            k: tuple(map(self._value, v)) for k, v in dups.items()}

    @classmethod
    def url_encoded(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        """Headers whose values are still URL-encoded (event-socket lines); decoded when read."""
        return cls(pairs, _encoded=True)

    def _value(self, raw: str) -> str:
        return unquote(raw, errors="replace") if self._encoded and "%" in raw else raw

    def __getitem__(self, name: str) -> str:
        return self._value(self._first[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"Headers({list(self.pairs)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.pairs == other.pairs
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every header in wire order, repeats included, decoded."""
        if self._decoded is None:
            self._decoded = tuple((name, self._value(value)) for name, value in self._pairs)
        return self._decoded

    def get_all(self, name: str) -> list[str]:
        return [self._value(v) for k, v in self._pairs if k == name]

    def get_ci(self, name: str, default: str | None = None) -> str | None:
        value = self._lower.get(name.lower())
        return default if value is None else self._value(value)


def _event_header(name: str) -> Derived[Event, str | None]:
    """One header of an :class:`Event` read as an attribute (None when FreeSWITCH did not send it)."""
    return Derived(lambda event: event.headers.get(name))


@dataclass(frozen=True, slots=True)
class Event:
    """A FreeSWITCH event (from ``text/event-plain`` or ``text/event-json``)."""

    format: EventFormat
    headers: Headers
    body: str | None = None

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    # the headers every handler reads (None: not sent)
    unique_id = _event_header("Unique-ID")
    application = _event_header("Application")
    application_uuid = _event_header("Application-UUID")
    application_response = _event_header("Application-Response")
    hangup_cause = _event_header("Hangup-Cause")
    job_uuid = _event_header("Job-UUID")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def variable(self, name: str) -> str | None:
        return self.headers.get(f"variable_{name}")


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame: outer headers, raw body and (for events) the parsed event."""

    headers: Headers
    body: bytes = b""
    event: Event | None = field(default=None, compare=False)

    @property
    def content_type(self) -> str:
        return self.headers.get_ci("Content-Type") or ""

    @property
    def reply_text(self) -> str | None:
        """``Reply-Text`` with the trailing newline of the connect reply stripped."""
        text = self.headers.get("Reply-Text")
        return None if text is None else text.rstrip("\n")

    @property
    def body_text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """True for ``+OK`` replies (command/reply via Reply-Text, api/response via body)."""
        if self.content_type == API_RESPONSE:
            return self.body.startswith(b"+OK")
        return (self.reply_text or "").startswith("+OK")

    def raise_for_error(self, command: str) -> Message:
        if self.content_type == COMMAND_REPLY and not self.ok:
            raise CommandError(command, self.reply_text or "")
        return self


def _first_of(*names: str) -> Derived[ChannelData, str | None]:
    """A :class:`ChannelData` header read as an attribute: the first of ``names`` sent non-empty."""
    return Derived(lambda data: data.first(*names))


@dataclass(frozen=True, slots=True)
class ChannelData:
    """The channel snapshot FreeSWITCH sends as the reply to outbound ``connect``."""

    headers: Headers

    @classmethod
    def from_reply(cls, message: Message) -> ChannelData:
        if message.content_type != COMMAND_REPLY:
            raise UnexpectedMessageError(f"connect: expected command/reply, got {message.content_type!r}")
        message.raise_for_error("connect")
        data = cls(message.headers)
        if not data.unique_id:
            raise UnexpectedMessageError("connect reply has no Unique-ID")
        return data

    def first(self, *names: str) -> str | None:
        """The first of ``names`` sent with a value (None: none of them)."""
        for name in names:
            value = self.headers.get(name)
            if value:
                return value
        return None

    @property
    def unique_id(self) -> str:
        return self.first("Unique-ID", "Channel-Unique-ID", "Caller-Unique-ID") or ""

    # the channel's headers, each the first of its names FreeSWITCH sent non-empty (None: none of them)
    destination_number = _first_of("Caller-Destination-Number", "Channel-Destination-Number")
    caller_id_number = _first_of("Caller-Caller-ID-Number", "Channel-Caller-ID-Number")
    caller_id_name = _first_of("Caller-Caller-ID-Name", "Channel-Caller-ID-Name")
    ani = _first_of("Caller-ANI", "Channel-ANI")
    context = _first_of("Caller-Context", "Channel-Context")
    channel_name = _first_of("Channel-Name", "Caller-Channel-Name")

    @property
    def answer_state(self) -> str | None:
        return self.headers.get("Answer-State")

    def variable(self, name: str, default: str | None = None) -> str | None:
        """A channel variable from the ``variable_*`` headers (URL-decoded)."""
        return self.headers.get(f"variable_{name}", default)

    @property
    def variables(self) -> dict[str, str]:
        return {k[len("variable_") :]: v for k, v in self.headers.items() if k.startswith("variable_")}
