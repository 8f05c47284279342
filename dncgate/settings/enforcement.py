"""``[enforcement]`` and ``[tenants.NAME.enforcement]``: cases, notices, restriction caps, complaint
clocks, and how a call analytics blocked is answered. Every default with its reason:

- ``notice_period_s = 86400``: the issue's default (24 h); the regulation asks for a notice before a
  suspension and gives no period, Ofcom's persistent-misuse notices give "a period to comply".
- ``restrict_per_minute = 10``, ``restrict_concurrent = 2``: a restricted originator keeps a trickle
  (a person's pace, not a campaign's) while its case runs; 0 would be a suspension without notice.
- complaint clocks ``3 / 15 / 3`` working days: 12321's forwarding, answer and reply periods.
- ``analytics_sip_code = 603``, ``reason_phrase = "Network Blocked"``: ATIS-1000099 "603+".
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, field

from dncgate.model import AnalyticsBlock
from dncgate.settings.table import Table

_BLOCK = AnalyticsBlock()
Texts = tuple[str, ...]


class NoticeSettings(Table, frozen=True):
    """``[enforcement.notice]``: where notices go (JSON POST), bounded and retried."""

    webhook_url: str = ""  # the originator's notice endpoint (or the carrier's own notice desk)
    provisioning_url: str = ""  # told to stop new numbers when a case restricts or suspends
    # each delivery attempt, seconds
    deadline: Annotated[float, Meta(ge=0.1, le=60.0)] = field(default=5.0, name="deadline_s")
    attempts: Annotated[int, Meta(ge=1, le=20)] = 4  # deliveries tried before it is recorded as failed
    max_body_bytes: Annotated[int, Meta(ge=1024, le=1 << 20)] = 64 << 10  # a notice larger than this is not sent


class ComplaintSettings(Table, frozen=True):
    """``[enforcement.complaints]``: the working-day SLA clocks and their calendar."""

    forward_days: Annotated[int, Meta(ge=0, le=60)] = 3  # working days to forward a complaint
    answer_days: Annotated[int, Meta(ge=0, le=120)] = 15  # working days for the originator's answer
    inform_days: Annotated[int, Meta(ge=0, le=60)] = 3  # working days to inform the complainant
    warn_before_hours: Annotated[int, Meta(ge=0, le=720)] = 24  # a step this near its deadline is listed as due
    weekend_days: Texts = ("sat", "sun")  # not working days
    holidays: Texts = ()  # dates like 2026-10-01
    match_window_s: Annotated[int, Meta(ge=0, le=86_400)] = 600  # audit decisions this near called_at match
    audit_scan: Annotated[int, Meta(ge=0, le=1_000_000)] = 10_000  # newest audit records searched


class EnforcementSettings(Table, frozen=True):
    """``[enforcement]``: cases opened from alerts, and what the gate does about them."""

    enabled: bool = False  # open cases from alerts and act on them
    # seconds between a notice and the earliest suspension it allows
    notice_period: Annotated[float, Meta(ge=0.0, le=90 * 86_400.0)] = field(default=86_400.0, name="notice_period_s")
    auto_notice: bool = True  # a critical alert sends the notice
    auto_suspend: bool = False  # ... and schedules the suspension for when the notice period has run
    restrict_per_minute: Annotated[int, Meta(ge=0, le=100_000)] = 10  # a restricted originator's calls a minute
    restrict_concurrent: Annotated[int, Meta(ge=0, le=100_000)] = 2  # a restricted originator's calls at once
    # how often due suspensions are looked for, seconds
    scheduler_interval: Annotated[float, Meta(ge=0.05, le=3600.0)] = field(default=5.0, name="scheduler_interval_s")
    notice: NoticeSettings = field(default_factory=NoticeSettings)
    complaints: ComplaintSettings = field(default_factory=ComplaintSettings)


class TenantEnforcementSettings(Table, frozen=True):
    """``[tenants.NAME.enforcement]``: how this tenant answers a call analytics blocked."""

    analytics_sip_code: int = _BLOCK.sip_code  # one of 603, 607, 608
    reason_phrase: str = _BLOCK.reason_phrase  # the final response's reason phrase
    location: str = _BLOCK.location  # the blocking network's name in the Reason header (empty: the tenant's)
    redress: str = _BLOCK.redress  # https://... or tel:+... for the caller to dispute the block
