"""Parsed event-socket messages: header blocks, frames, events, channel data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dncgate.derived import Derived
from dncgate.esl.errors import CommandError, UnexpectedMessageError
from dncgate.esl.headers import Headers

__all__ = ["ChannelData", "Event", "EventFormat", "Headers", "Message"]

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
