"""Subscriber complaints and forwarded reports, with working-day SLA clocks. Pure: no I/O.

A complaint names the complainant, the originator's number, when the call came and what happened.
Its clocks (12321's, by default): forwarded within 3 working days of receipt, answered within 15,
and the complainant told within 3 of the answer. Working days skip the configured weekend days and
holiday dates; a deadline keeps the time of day it started from.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from dncgate.enforcement.model import StoredRecord, checked_text, iso, parse_iso
from dncgate.errors import CaseError

MAX_DECISIONS = 20  # decision ids matched from the audit and kept with a complaint


class ComplaintSource(StrEnum):
    SUBSCRIBER = "subscriber"  # the called party, directly
    FORWARDED = "forwarded"  # a regulator's or platform's forwarded report (12321, a traceback request)


class Step(StrEnum):
    FORWARD = "forward"
    ANSWER = "answer"
    INFORM = "inform"


@dataclass(frozen=True, slots=True)
class WorkingDays:
    """The calendar SLA clocks count in: weekend days (0 Monday .. 6 Sunday) and holiday dates."""

    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()

    def is_working(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def add(self, start: datetime, days: int) -> datetime:
        """``days`` working days after ``start`` (same time of day); at most ~3 years of calendar."""
        at, left = start, days
        for _ in range(1100):
            if left <= 0:
                return at
            at += timedelta(days=1)
            if self.is_working(at.date()):
                left -= 1
        raise CaseError(f"no {days} working days within three years of {start.date()}: check the calendar")


@dataclass(frozen=True, slots=True)
class Sla:
    forward_days: int = 3
    answer_days: int = 15
    inform_days: int = 3
    warn_before: timedelta = timedelta(hours=24)  # alert this long before a deadline lapses
    calendar: WorkingDays = field(default_factory=WorkingDays)


@dataclass(frozen=True, slots=True)
class Complaint(StoredRecord):
    tenant: str
    complainant: str  # the subscriber's number, or the forwarding body's reference
    originator_number: str  # the calling number the complaint is about (E.164)
    called_at: datetime
    text: str
    received_at: datetime
    source: ComplaintSource = ComplaintSource.SUBSCRIBER
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recorded_by: str = ""
    decisions: tuple[str, ...] = ()  # the audit's decision ids that match it
    forwarded_at: datetime | None = None
    answered_at: datetime | None = None
    informed_at: datetime | None = None
    answer: str = ""
    steps_by: tuple[tuple[str, str], ...] = ()  # (step, who recorded it: api:<key>, console:<operator>)

    def deadlines(self, sla: Sla) -> dict[Step, datetime]:
        cal = sla.calendar
        answered = self.answered_at or cal.add(self.received_at, sla.answer_days)
        return {
            Step.FORWARD: cal.add(self.received_at, sla.forward_days),
            Step.ANSWER: cal.add(self.received_at, sla.answer_days),
            Step.INFORM: cal.add(answered, sla.inform_days),
        }

    def done(self, step: Step) -> datetime | None:
        return {Step.FORWARD: self.forwarded_at, Step.ANSWER: self.answered_at, Step.INFORM: self.informed_at}[step]

    def due_soon(self, sla: Sla, now: datetime) -> list[tuple[Step, datetime]]:
        """The steps not done whose deadline lapses within ``sla.warn_before`` (or has lapsed)."""
        return [(step, due) for step, due in self.deadlines(sla).items()
                if self.done(step) is None and now >= due - sla.warn_before]

    def with_step(self, step: Step, at: datetime, answer: str = "", by: str = "") -> Complaint:
        if self.done(step) is not None:
            raise CaseError(f"complaint {self.id}: {step.value} is already recorded")
        if step is Step.INFORM and self.answered_at is None:
            raise CaseError(f"complaint {self.id}: answer it before telling the complainant")
        recorded = replace(self, steps_by=(*self.steps_by, (step.value, checked_text("by", by)))) if by else self
        if step is Step.ANSWER:
            return replace(recorded, answered_at=at, answer=checked_text("answer", answer))
        return replace(recorded, forwarded_at=at) if step is Step.FORWARD else replace(recorded, informed_at=at)

    def as_dict(self, sla: Sla | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "tenant": self.tenant, "complainant": self.complainant,
            "originator_number": self.originator_number, "called_at": iso(self.called_at), "text": self.text,
            "received_at": iso(self.received_at), "source": self.source.value, "recorded_by": self.recorded_by,
            "decisions": list(self.decisions), "forwarded_at": iso(self.forwarded_at),
            "answered_at": iso(self.answered_at), "informed_at": iso(self.informed_at), "answer": self.answer,
            "steps_by": dict(self.steps_by),
        }
        if sla is not None:
            body["deadlines"] = {step.value: iso(due) for step, due in self.deadlines(sla).items()}
        return body

    @classmethod
    def from_json(cls, raw: str | bytes) -> Complaint:
        try:
            data = json.loads(raw)
            return complaint_of(data["tenant"], data, received_at=_time(data, "received_at"),
                                recorded_by=data.get("recorded_by", ""), complaint_id=data["id"]).stored(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise CaseError(f"not a complaint: {exc}") from None

    def stored(self, data: dict[str, Any]) -> Complaint:
        return replace(
            self, decisions=tuple(str(d) for d in data.get("decisions", ())),
            forwarded_at=parse_iso(data.get("forwarded_at"), "forwarded_at"),
            answered_at=parse_iso(data.get("answered_at"), "answered_at"),
            informed_at=parse_iso(data.get("informed_at"), "informed_at"), answer=str(data.get("answer", "")),
            steps_by=tuple((str(k), str(v)) for k, v in dict(data.get("steps_by", {})).items()),
        )


def _time(data: dict[str, Any], name: str) -> datetime:
    value = parse_iso(data.get(name), name)
    if value is None:
        raise CaseError(f"{name}: required (ISO 8601 with an offset)")
    return value


def complaint_of(tenant: str, data: dict[str, Any], *, received_at: datetime, recorded_by: str,
                 complaint_id: str | None = None) -> Complaint:
    """A complaint from a JSON object (the API's body, a stored record). Raises ``CaseError``."""
    def text(name: str, *, limit: int = 128) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise CaseError(f"{name}: required, a string of at most {limit} characters")
        return value.strip()

    try:
        source = ComplaintSource(str(data.get("source", ComplaintSource.SUBSCRIBER.value)))
    except ValueError:
        raise CaseError(f"source: one of {', '.join(s.value for s in ComplaintSource)}") from None
    called_at = _time(data, "called_at")
    if called_at > received_at + timedelta(minutes=5):
        raise CaseError("called_at: in the future")
    return Complaint(
        tenant=tenant, complainant=text("complainant"), originator_number=text("originator_number", limit=32),
        called_at=called_at, text=checked_text("text", str(data.get("text", ""))),
        received_at=received_at.astimezone(UTC),
        source=source, id=complaint_id or str(uuid.uuid4()), recorded_by=recorded_by,
    )


def calendar_of(weekend_days: Iterable[str], holidays: Iterable[str]) -> WorkingDays:
    """A calendar from config values (``sat``, ``sun``; ``2026-10-01``). Raises ``CaseError``."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    try:
        weekend = frozenset(names.index(day.lower()[:3]) for day in weekend_days)
        dates = frozenset(date.fromisoformat(day) for day in holidays)
    except ValueError as exc:
        raise CaseError(f"working-day calendar: {exc}") from None
    return WorkingDays(weekend, dates)
