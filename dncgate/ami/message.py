"""Typed views of AMI messages (events and responses) and the default noise filter.

panoramisk parses the wire format into its untyped, case-insensitive ``Message``; we copy each one
into an immutable :class:`AmiMessage` so nothing downstream depends on panoramisk's types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_NOISE", "AmiMessage", "AmiResponse"]

# Events that carry nothing a call consumer needs and dominate the stream: a debug build's
# TestEvent (Debian's package has TEST_FRAMEWORK on), one VarSet per variable write, one Newexten
# per dialplan step, RTCP reports, AMI's own security chatter and Asterisk's boot marker.
DEFAULT_NOISE: frozenset[str] = frozenset(
    {
        "TestEvent",
        "VarSet",
        "Newexten",
        "RTCPSent",
        "RTCPReceived",
        "SuccessfulAuth",
        "ChallengeSent",
        "FullyBooted",
    }
)


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI event or response. Header lookup is case-insensitive; repeated headers keep every value."""

    headers: Mapping[str, str]  # last value of each header, names as Asterisk spelled them
    content: str = ""  # body of ``Response: Follows`` (Command output)
    repeated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # headers sent more than once
    _lower: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lower", {k.lower(): v for k, v in self.headers.items()})

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Any]], content: str = "") -> AmiMessage:
        headers: dict[str, str] = {}
        repeated: dict[str, tuple[str, ...]] = {}
        for key, value in pairs:
            if isinstance(value, list | tuple):
                values = tuple(str(v) for v in value)
                repeated[key] = values
                headers[key] = values[-1] if values else ""
            else:
                headers[key] = str(value)
        return cls(headers, content, repeated)

    @classmethod
    def from_panoramisk(cls, message: Any) -> AmiMessage:
        return cls.from_pairs(message.items(), str(getattr(message, "content", "") or ""))

    def get(self, name: str, default: str = "") -> str:
        return self._lower.get(name.lower(), default)

    def get_all(self, name: str) -> tuple[str, ...]:
        for key, values in self.repeated.items():
            if key.lower() == name.lower():
                return values
        value = self._lower.get(name.lower())
        return () if value is None else (value,)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    @property
    def event(self) -> str:
        """The ``Event`` header ("" for a response)."""
        return self.get("Event")

    @property
    def response(self) -> str:
        """The ``Response`` header ("" for an event)."""
        return self.get("Response")

    @property
    def message(self) -> str:
        return self.get("Message")


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """The answer to one action: its ``Response`` message and, for list actions, the events that followed."""

    response: AmiMessage
    events: tuple[AmiMessage, ...] = ()

    @property
    def ok(self) -> bool:
        return self.response.response in ("Success", "Follows", "Goodbye")
