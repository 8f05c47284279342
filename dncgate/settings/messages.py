"""``[messages]``: commercial messages (SIP MESSAGE, SMPP) on the call path, and the sender-port registry.

```toml
[messages]
enabled = true

[messages.tenants.acme]
opt_out_keywords = ["STOP", "TD", "退订"]      # a reply that is one of these withdraws consent
notice = "Message not delivered: the recipient does not accept marketing messages."

[messages.tenants.acme.ports."106900001234"]     # a sender number or short code, as the switch sends it
registered_for = "marketing"                     # or "service"
entity = "bank-1"                                # the business: consent and opt-outs are keyed by it
accounts = ["bulk-1"]                            # the SMPP system_ids / API key ids that may send from it
```

Every default with its reason:

- ``opt_out_keywords``: STOP (CTIA, Ofcom), TD and 退订 (the Chinese carriers' "reply TD to
  unsubscribe"), UNSUBSCRIBE; matched whole, case-folded, after NFKC (full-width letters too).
- ``misuse_alert_interval_s = 3600``: one early-warning alert per service port an hour misused; the
  messages in between are counted in the next one, so a campaign does not flood the case log.
- ``max_body_chars = 4096``: some 27 concatenated SMS segments; a longer body is refused as bad input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Annotated

from msgspec import Meta, field

from dncgate.config_file import LOOPBACK_PEERS
from dncgate.model import PortUse, TenantPolicy
from dncgate.numbers import DialPlan, ShortNumber, Subscriber, normalise, uri_user
from dncgate.settings.table import Table

Texts = tuple[str, ...]
DEFAULT_OPT_OUT_KEYWORDS: Texts = ("STOP", "UNSUBSCRIBE", "TD", "退订")
_SEPARATORS = re.compile(r"[\s().\-]")
_NUMERIC_PORT = re.compile(r"\+?[0-9]{3,20}")
_ALPHANUMERIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ]{0,10}")  # an SMPP alphanumeric sender (TON 5)
# blanks, ASCII and CJK punctuation (the ideographic full stop, full-width ,!?;: and the enumeration comma)
_OUTER = " \t\r\n.,;:!?'\"\u3002\uff0c\uff01\uff1f\uff1b\uff1a\u3001\u2026"
_ENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SenderPortSettings(Table, frozen=True):
    """``[messages.tenants.NAME.ports."NUMBER"]``: what one sender port (a number or short code, as
    the switch sends it) is registered for."""

    # service or marketing; a port registered for service that sends marketing is refused (service_port_misuse)
    registered_for: PortUse = PortUse.SERVICE
    # the business behind the port; required for a marketing port (consent and opt-outs are keyed by it)
    entity: str = ""
    category: str = ""  # a marketing port's category (finance, ...): a message that names none is of it
    # who may send from it: SMPP system_ids, API key ids; empty: any API key of the tenant, no SMPP ESME
    accounts: Texts = ()


class TenantMessageSettings(Table, frozen=True):
    """``[messages.tenants.NAME]``: one tenant's sender ports, opt-out keywords and refusal notice."""

    ports: dict[str, SenderPortSettings] = field(default_factory=dict)  # the tenant's sender ports, by number
    # a reply to a registered port that is one of these (whole, case- and width-folded) withdraws consent
    opt_out_keywords: Texts = DEFAULT_OPT_OUT_KEYWORDS
    notice: str = ""  # sent back to the sender of a refused message where the door can ("": none)


class SmppSettings(Table, frozen=True):
    """``[messages.smpp]``: the SMPP proxy between the ESMEs (bulk senders) and the carrier's SMSC."""

    enabled: bool = False  # listen for ESMEs and check every submit_sm / data_sm
    host: str = "127.0.0.1"  # where ESMEs bind
    port: Annotated[int, Meta(ge=0, le=65535)] = 2775  # where ESMEs bind (0: any free port)
    upstream_host: str = "127.0.0.1"  # the SMSC the proxy forwards to
    upstream_port: Annotated[int, Meta(ge=1, le=65535)] = 2776  # the SMSC's port
    tenant: str = ""  # the tenant every bound ESME belongs to ("": the default tenant)
    max_sessions: Annotated[int, Meta(ge=1, le=10_000)] = 64  # ESME sessions at once; more are closed
    max_sessions_per_peer: Annotated[int, Meta(ge=1, le=10_000)] = 16  # one ESME address's share
    allow: Texts = LOOPBACK_PEERS  # peer networks (CIDR) ESMEs may connect from; anyone else is closed at once
    # an ESME that sends nothing (not even enquire_link) this long is closed
    idle_deadline: Annotated[float, Meta(ge=1.0, le=3600.0)] = field(default=120.0, name="idle_deadline_s")
    # connecting to the SMSC, per ESME session
    connect_deadline: Annotated[float, Meta(ge=0.1, le=60.0)] = field(default=5.0, name="connect_deadline_s")
    # every write to either peer
    response_deadline: Annotated[float, Meta(ge=0.1, le=120.0)] = field(default=10.0, name="response_deadline_s")


class ChatplanSettings(Table, frozen=True):
    """``[messages.freeswitch]``: the inbound event socket the chatplan's MESSAGE events come from."""

    enabled: bool = False  # connect to FreeSWITCH and check the messages dncgate_chatplan.xml hands over
    host: str = "127.0.0.1"  # FreeSWITCH's event socket (event_socket.conf.xml)
    port: Annotated[int, Meta(ge=1, le=65535)] = 8021  # FreeSWITCH's event socket port
    password: str | None = None  # None: the event socket's default (dncgate.esl.inbound.InboundConfig)
    tenant: str = ""  # for messages the chatplan does not mark with dncgate_tenant ("": the default tenant)

    def __repr__(self) -> str:  # never the password
        return f"ChatplanSettings(enabled={self.enabled}, host={self.host!r}, port={self.port})"


class MessagesSettings(Table, frozen=True):
    """``[messages]``: whether message checks run (POST /v1/messages/check, SMPP, the chatplan), and
    each tenant's message settings."""

    enabled: bool = False  # check messages: POST /v1/messages/check, and the SMPP and chatplan doors when on
    max_body_chars: Annotated[int, Meta(ge=160, le=65_536)] = 4096  # a longer message body is refused as bad input
    # one service_port_misuse alert per port per this many seconds; the messages between are counted in the next
    misuse_alert_interval: Annotated[float, Meta(ge=0.0, le=86_400.0)] = field(
        default=3600.0, name="misuse_alert_interval_s")
    tenants: dict[str, TenantMessageSettings] = field(default_factory=dict)  # per tenant: ports, keywords, notice
    smpp: SmppSettings = field(default_factory=SmppSettings)  # the SMPP proxy
    freeswitch: ChatplanSettings = field(default_factory=ChatplanSettings)  # the chatplan's event socket


def port_number(raw: str, plan: DialPlan) -> str | None:
    """The registry's key for a sender port: E.164 for a subscriber number, the digits of a short
    code or an unlisted service port (``106900001234``), an alphanumeric sender in upper case;
    None when ``raw`` is none of these."""
    text = uri_user(raw.strip())
    callee = normalise(text, plan)
    if isinstance(callee, Subscriber):
        return callee.e164
    if isinstance(callee, ShortNumber):
        return callee.digits
    compact = _SEPARATORS.sub("", text)
    if _NUMERIC_PORT.fullmatch(compact):
        return compact
    if _ALPHANUMERIC_ID.fullmatch(text) and not text.isdigit():
        return text.upper()
    return None


def keyword_form(text: str) -> str:
    """A reply or keyword as compared: NFKC (full-width letters), case-folded, outer blanks and
    punctuation removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.strip(_OUTER)


def messages_problems(table: MessagesSettings, tenants: Mapping[str, TenantPolicy],
                      categories: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(key under ``messages``, what is wrong): tenants that exist, ports that parse, entities that
    name, categories of the ``[consent]`` taxonomy."""
    for name, tenant_table in table.tenants.items():
        tenant = tenants.get(name)
        if tenant is None:
            yield f"tenants.{name}", f"no tenant {name!r} (configured: {', '.join(sorted(tenants))})"
            continue
        for key, message in port_problems(tenant_table, tenant.dial_plan):
            yield f"tenants.{name}.{key}", message
        for raw, port in tenant_table.ports.items():
            if port.category and port.category not in categories:
                yield f"tenants.{name}.ports.{raw}.category", f"{port.category!r} is not one of {', '.join(categories)}"
    for key, tenant_name in (("smpp.tenant", table.smpp.tenant), ("freeswitch.tenant", table.freeswitch.tenant)):
        if tenant_name and tenant_name not in tenants:
            yield key, f"no tenant {tenant_name!r}"


def port_problems(table: TenantMessageSettings, plan: DialPlan) -> list[tuple[str, str]]:
    """(key, what is wrong) for one tenant's message settings."""
    found: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for raw, port in table.ports.items():
        key = f"ports.{raw}"
        number = port_number(raw, plan)
        if number is None:
            found.append((key, f"{raw!r} is not a sender number, short code or alphanumeric sender id"))
            continue
        if number in seen:
            found.append((key, f"the same port as {seen[number]!r} ({number})"))
        seen[number] = raw
        if port.entity and not _ENTITY.fullmatch(port.entity):
            found.append((f"{key}.entity", "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"))
        for account in port.accounts:
            if not account.strip() or len(account) > 64:
                found.append((f"{key}.accounts", f"{account!r}: an account is 1-64 characters"))
        if port.registered_for is PortUse.MARKETING and not port.entity:
            found.append((f"{key}.entity", "required for a marketing port: consent and opt-outs are keyed by it"))
    for word in table.opt_out_keywords:
        if not keyword_form(word) or len(word) > 32:
            found.append(("opt_out_keywords", f"{word!r}: a keyword is 1-32 characters besides blanks and punctuation"))
    if len(table.notice) > 1000:
        found.append(("notice", "at most 1000 characters"))
    return found
