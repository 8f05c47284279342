"""The values that flow through a decision: the attempt, the store's facts, the decision itself.

Plain frozen dataclasses and enums, no behaviour, no I/O: the doors build an attempt, a store
builds facts, ``policy.decide()`` turns both into a decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dncgate.hours import CallingHours
from dncgate.numbers import Callee, DialPlan


class Purpose(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"


class Verdict(StrEnum):
    ALLOW = "allow"
    REJECT = "reject"


class Mode(StrEnum):
    ENFORCE = "enforce"  # the verdict is carried out
    MONITOR = "monitor"  # every call is allowed; the would-be verdict is recorded


class ListPolicy(StrEnum):
    OPT_OUT = "opt-out"  # reject listed callees
    OPT_IN = "opt-in"  # a marketing call needs explicit consent, listed or not


class FailureAction(StrEnum):
    REJECT = "reject"
    ALLOW = "allow"


class StaleAction(StrEnum):
    ALARM = "alarm"  # log and alert, keep deciding on the old list
    REJECT = "reject"  # reject marketing calls with reason list_stale


class Reason(StrEnum):
    NATIONAL_DNC = "national_dnc"
    TENANT_DNC = "tenant_dnc"
    PREFIX_RULE = "prefix_rule"
    INVALID_NUMBER = "invalid_number"
    CHECK_FAILED = "check_failed"
    ALLOWED_SERVICE = "allowed_service"
    ALLOWED_CLEAR = "allowed_clear"
    ALLOWED_EMERGENCY = "allowed_emergency"  # emergency and short service numbers
    # Consent ledger: an explicit consent, its absence under opt-in, or its withdrawal.
    ALLOWED_CONSENT = "allowed_consent"
    NO_CONSENT = "no_consent"
    CONSENT_REVOKED = "consent_revoked"
    # Subscriber preferences and the originator's standing.
    CATEGORY_DECLINED = "category_declined"
    SUBSCRIBER_BLOCK = "subscriber_block"
    ORIGINATOR_SUSPENDED = "originator_suspended"
    # Enforcement restricted the originator and this marketing call is over its caps.
    ORIGINATOR_RESTRICTED = "originator_restricted"
    # The national list is older than the tenant allows (and the tenant chose to reject).
    LIST_STALE = "list_stale"
    # A marketing call outside the tenant's calling window in the callee's local time.
    OUTSIDE_HOURS = "outside_hours"
    # The request named a tenant that is not configured, or a blank one (a configuration fault).
    UNKNOWN_TENANT = "unknown_tenant"
    # A list the tenant needs (``required_lists``) has no live version: nothing says who is on it.
    LIST_MISSING = "list_missing"
    # Messages: the sender port (number or short code) is not in the registry ...
    UNKNOWN_SENDER_PORT = "unknown_sender_port"
    # ... or it is registered for service messages and sends a marketing one.
    SERVICE_PORT_MISUSE = "service_port_misuse"


REJECT_SIP_CODES = frozenset({603, 607, 608})
# The category a subscriber declines to decline all marketing (in Facts.declined_categories).
DECLINE_ALL = "*"
# A tenant's name: it names the tenant's own list (``tenant:NAME``), its keys and its records.
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The check could not be completed: these decisions follow the tenant's failure policy (its
# ``check_failed_sip_code``), and carry no announcement: the callee declined nothing. A message from a
# sender port nobody registered cannot be attributed: the same (marketing refused, service per
# ``service_on_failure``).
FAILURE_REASONS = frozenset({Reason.CHECK_FAILED, Reason.INVALID_NUMBER, Reason.UNKNOWN_TENANT, Reason.LIST_MISSING,
                             Reason.UNKNOWN_SENDER_PORT})
NATIONAL_LIST = "national"  # the national list's name (a tenant's own is ``tenant:NAME``)
# Analytics (enforcement) blocked the call: answered ATIS-1000099 "603+" (``AnalyticsBlock``).
ANALYTICS_REASONS = frozenset({Reason.ORIGINATOR_SUSPENDED, Reason.ORIGINATOR_RESTRICTED})


@dataclass(frozen=True, slots=True)
class AnalyticsBlock:
    """How a call analytics blocked is answered (ATIS-1000099 "603+"): the code, its reason phrase,
    and the Reason header's parts: where it was blocked and whom to contact for redress."""

    sip_code: int = 603
    reason_phrase: str = "Network Blocked"
    location: str = ""  # the blocking network's name (empty: the tenant's name)
    redress: str = ""  # a URL or tel: URI the caller can use to dispute the block


@dataclass(frozen=True, slots=True)
class Restriction:
    """Caps on an originator's marketing calls while enforcement restricts it (0: no cap)."""

    per_minute: int = 0
    concurrent: int = 0
    originator: str = ""  # the restricted key, ``kind:value`` (``account:acme-out``): the counters' key


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """What one tenant (a carrier, a reseller, a call centre platform) asks the gate to do."""

    name: str
    dial_plan: DialPlan = field(default_factory=DialPlan)
    mode: Mode = Mode.ENFORCE
    list_policy: ListPolicy = ListPolicy.OPT_OUT
    default_purpose: Purpose = Purpose.MARKETING
    reject_sip_code: int = 607
    check_failed_sip_code: int = 603
    marketing_on_failure: FailureAction = FailureAction.REJECT
    service_on_failure: FailureAction = FailureAction.ALLOW
    language: str = "en"
    # A sound file without extension; "{language}" and "{tenant}" are filled in.
    announcement: str = "dncgate/{language}/declined"
    # The national list's maximum age (31 days: the US rule; the UK's is 28) and what happens past it.
    max_list_age: timedelta = timedelta(days=31)
    stale_action: StaleAction = StaleAction.ALARM
    # Calling window in the callee's local time for marketing calls (None: no window).
    hours: CallingHours | None = None
    analytics_block: AnalyticsBlock = field(default_factory=AnalyticsBlock)
    # The lists that must have a live version for a marketing call to be decided (else
    # ``list_missing``): ``national`` and/or this tenant's own ``tenant:NAME``.
    required_lists: tuple[str, ...] = (NATIONAL_LIST,)

    def announcement_for(self, language: str | None = None) -> str:
        return self.announcement.format(language=language or self.language, tenant=self.name)

    @property
    def own_list(self) -> str:
        return f"tenant:{self.name}"


@dataclass(frozen=True, slots=True)
class Originator:
    account: str = ""
    trunk: str = ""
    caller_id: str = ""
    # The business behind the call (it may call from many numbers); consent is keyed by it.
    entity: str = ""


# What a sender port (a message's originating number or short code) is registered for: the
# purpose of the messages it may send.
PortUse = Purpose


@dataclass(frozen=True, slots=True)
class SenderPort:
    """A message's sender port as the registry knows it (``registered_for`` None: not registered)."""

    number: str  # E.164 with '+', or the short code's digits
    registered_for: PortUse | None = None
    entity: str = ""
    category: str = ""  # what a marketing port's messages are about, when the message does not say


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """A call, or a message (``sender`` set: its port, checked by the port rules; None for a call)."""

    tenant: TenantPolicy
    originator: Originator
    purpose: Purpose
    callee: Callee
    at: datetime
    category: str | None = None
    language: str | None = None
    # The tenant the request named when no tenant has that name ("" for a blank one): ``tenant`` is
    # then the gate's built-in defaults, and the decision is ``unknown_tenant``.
    unknown_tenant: str | None = None
    sender: SenderPort | None = None


@dataclass(frozen=True, slots=True)
class ListHit:
    """A list that matched: ``national`` or ``tenant:NAME``; for a prefix rule, the prefix."""

    list_name: str
    version: str
    prefix: str | None = None


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ConsentFact:
    """The ledger's current entry for (tenant, originator entity, callee), if any."""

    status: ConsentStatus
    # Categories the consent covers; empty means every marketing category.
    categories: frozenset[str] = frozenset()
    record_id: str = ""
    # A granted consent counts only from valid_from and before expires_at (None: unbounded).
    valid_from: datetime | None = None
    expires_at: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the store returned for one attempt, in one round trip."""

    national: ListHit | None = None
    tenant_list: ListHit | None = None
    prefix_rule: ListHit | None = None
    national_version: str = ""  # the national list's live version ("": none loaded)
    tenant_version: str = ""  # the tenant's own list's live version ("": none loaded)
    consent: ConsentFact | None = None
    # Categories the callee declined; DECLINE_ALL ("*") declines all marketing.
    declined_categories: frozenset[str] = frozenset()
    # The callee recorded a specific block against this originator (applies to service calls too).
    subscriber_blocks_originator: bool = False
    originator_suspended: bool = False
    # Enforcement restricts the originator (its caps, from the store) ...
    originator_restriction: Restriction | None = None
    # ... and this call is over them (the gate's counters say so; see dncgate.enforcement.limits).
    originator_restricted: bool = False
    # Age of the national list's live version (None: unknown, or no list loaded).
    list_age: timedelta | None = None


@dataclass(frozen=True, slots=True)
class FactsUnavailable:
    """The store could not answer (down, timed out, corrupt): the check cannot be completed."""

    error: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict  # what the switch does
    outcome: Verdict  # what the policy concluded (differs from verdict in monitor mode)
    reason: Reason
    mode: Mode
    list_name: str | None = None
    list_version: str | None = None
    sip_code: int | None = None
    announcement: str | None = None
    detail: str = ""
