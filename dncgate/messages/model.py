"""A message as a door hands it over, and what the gate concluded about it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dncgate.consent.model import LedgerEvent
from dncgate.errors import MessageError
from dncgate.gate import CheckResult
from dncgate.model import SenderPort, Verdict

MAX_ADDRESS_CHARS = 256  # a sender or recipient (a SIP URI with its parameters at most)
DOORS = frozenset({"sip-message", "smpp", "api"})


class Direction(StrEnum):
    OUTBOUND = "outbound"  # from a sender port to a recipient: checked
    REPLY = "reply"  # from a subscriber to a registered port: an opt-out keyword withdraws consent


@dataclass(frozen=True, slots=True)
class Message:
    """One message: raw addresses as the switch has them (``sip:...``, national, E.164, short code)."""

    sender: str
    recipient: str
    body: str
    door: str  # sip-message | smpp | api: the audit's door
    tenant: str | None = None
    purpose: str | None = None  # marketing | service; else the port's registration, then the tenant's default
    category: str | None = None
    message_id: str = ""  # the switch's own id (a SIP Call-ID, an SMPP sequence): evidence of an opt-out
    account: str = ""  # who handed it over: an API key id, an SMPP system_id
    received_at: datetime | None = None  # when the door took it (an opt-out's evidence); None: now

    def checked(self, max_body_chars: int) -> Message:
        """This message, or ``MessageError`` saying what is wrong with it (nothing is truncated)."""
        for name in ("sender", "recipient"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise MessageError(f"{name}: required (a number, short code or sip:/tel: URI)")
            if len(value) > MAX_ADDRESS_CHARS:
                raise MessageError(f"{name}: at most {MAX_ADDRESS_CHARS} characters")
        if not isinstance(self.body, str):
            raise MessageError("body: expected text")
        if len(self.body) > max_body_chars:
            raise MessageError(f"body: {len(self.body)} characters, at most {max_body_chars}")
        if self.door not in DOORS:
            raise MessageError(f"door: one of {', '.join(sorted(DOORS))}")
        return replace(self, sender=address_of(self.sender), recipient=address_of(self.recipient))


def address_of(value: str) -> str:
    """The URI of a name-addr (``"Bank" <sip:106900001234@gw>;tag=x`` -> ``sip:106900001234@gw``): a
    SIP From or To header as a switch hands it over. Asterisk's ``MESSAGE(to)`` of a PJSIP message
    is ``pjsip:USER@HOST``: read as ``sip:``. Anything else as it is, stripped."""
    text = value.strip()
    start = text.find("<")
    end = text.find(">", start + 1)
    if start >= 0 and end > start:
        text = text[start + 1:end].strip()
    if text[:6].lower() == "pjsip:":
        text = "sip:" + text[6:]
    return text


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What to do with a message: deliver it or not, and why (``check`` for an outbound message, the
    withdrawal recorded for a reply that opted out)."""

    direction: Direction
    port: SenderPort
    check: CheckResult | None = None
    opt_out: LedgerEvent | None = None
    notice: str = ""  # for the sender of a refused message ("" when none is configured)

    @property
    def deliver(self) -> bool:
        return self.check is None or self.check.decision.verdict is Verdict.ALLOW
