"""Drives :class:`~dncgate.ivr.flow.IvrFlow` for one call: the ledger side, shared by both switches.

A switch adapter (``ivr.agi``, ``ivr.esl``) supplies an :class:`IvrPort` (play prompts, collect
digits, hang up) and the call's facts (:class:`IvrCall`); :func:`run_ivr` identifies the caller
from the caller ID with the tenant's dial plan, reads their state from the consent ledger, and
records every choice as a ledger event with IVR evidence (channel ``ivr``, the caller ID as
source, the prompt id and keys as what was shown, captured by ``ivr``). The ledger applies it
to the current state in the same transaction (the next decision sees it) and queues preference
records in its registry outbox for upload to the national platform, exactly as the HTTP API's
records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog

from dncgate.consent.ledger import Ledger
from dncgate.consent.model import Channel, Evidence, LedgerError, LedgerEvent
from dncgate.errors import SwitchError
from dncgate.ivr.flow import Ask, Caller, Change, End, Hangup, IvrFlow, Load, Save, Say, Snapshot, Step
from dncgate.model import ConsentStatus, TenantPolicy
from dncgate.numbers import Subscriber, normalise
from dncgate.settings import IvrSettings
from dncgate.store.errors import StoreError

Log = Any  # structlog's bound logger
_T = TypeVar("_T")

LANGUAGES = ("en", "zh")  # the languages prompts/generate.sh renders the IVR prompts in
CAPTURED_BY = "ivr"
CALLER_GONE = "caller"


class CallerGone(SwitchError):
    """The caller hung up (raised by an adapter; ends the flow)."""


class IvrPort(Protocol):
    """What a switch adapter does for the flow. Each method raises :class:`CallerGone` on hang-up."""

    async def say(self, prompts: Sequence[str]) -> None: ...

    async def ask(self, step: Ask) -> str: ...

    async def hangup(self) -> None: ...


@dataclass(frozen=True, slots=True)
class IvrCall:
    """One IVR call as the switch describes it."""

    tenant: str | None  # None: the default tenant
    caller_id: str  # as received ("" when missing)
    withheld: bool  # the caller asked for the number not to be shown
    call_id: str  # the switch's unique id (goes into the ledger record's detail)
    door: str  # "agi" or "esl"
    language: str | None = None  # requested; else the tenant's; else English


@dataclass(frozen=True, slots=True)
class IvrContext:
    """What every IVR call needs: the tenants (dial plans), the ledger, the bounds."""

    tenants: Mapping[str, TenantPolicy]
    ledger: Ledger
    settings: IvrSettings = field(default_factory=IvrSettings)  # the menu's bounds and both deadlines
    default_tenant: str = "default"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class IvrResult:
    reason: str  # an End value, "caller" (the caller hung up) or "deadline"
    caller: str  # the E.164 number identified, or ""
    saved: tuple[LedgerEvent, ...]


def language_of(requested: str | None, tenant: TenantPolicy | None) -> str:
    for candidate in (requested, tenant.language if tenant else None):
        if candidate and candidate.lower() in LANGUAGES:
            return candidate.lower()
    return LANGUAGES[0]


def identify(caller_id: str, withheld: bool, tenant: TenantPolicy | None) -> Caller:
    """The subscriber behind the caller ID, normalised with the tenant's dial plan; or nobody."""
    if withheld or tenant is None:
        return Caller()
    callee = normalise(caller_id.strip()[:64], tenant.dial_plan)
    return Caller(callee.e164) if isinstance(callee, Subscriber) else Caller()


async def run_ivr(port: IvrPort, call: IvrCall, ctx: IvrContext, log: Log | None = None) -> IvrResult:
    """Run the menu for one call until the flow hangs up, the caller does, or the deadline passes."""
    log = (log or structlog.get_logger()).bind(ivr_call=call.call_id, door=call.door)
    tenant = ctx.tenants.get(call.tenant or ctx.default_tenant)
    if tenant is None:
        log.error("ivr.unknown_tenant", tenant=call.tenant)
    language = language_of(call.language, tenant)
    caller = identify(call.caller_id, call.withheld, tenant)
    log = log.bind(tenant=tenant.name if tenant else call.tenant, caller=caller.e164 or None, language=language)
    log.info("ivr.started", withheld=call.withheld or None)
    flow = IvrFlow(caller, ctx.ledger.config.categories, ctx.settings)
    saved: list[LedgerEvent] = []
    reason = "deadline"
    deadline = asyncio.timeout(ctx.settings.call_deadline)
    try:
        async with deadline:
            step: Step = flow.start()
            while not isinstance(step, Hangup):
                step = flow.send(await _carry_out(step, port, call, ctx, tenant, caller, language, saved, log))
            reason = step.reason
            await port.hangup()
    except CallerGone:
        reason = CALLER_GONE
    except TimeoutError:
        if not deadline.expired():
            raise  # a switch command timed out: the adapter's error, for the server's session boundary
        log.warning("ivr.deadline", deadline_s=ctx.settings.call_deadline)
        with contextlib.suppress(Exception):  # the call is over either way
            await port.hangup()
    log.info("ivr.finished", reason=str(reason), saved=[e.action.value for e in saved])
    return IvrResult(str(reason), caller.e164, tuple(saved))


async def _carry_out(step: Step, port: IvrPort, call: IvrCall, ctx: IvrContext, tenant: TenantPolicy | None,
                     caller: Caller, language: str, saved: list[LedgerEvent], log: Log) -> object:
    if isinstance(step, Say):
        await port.say(step.prompts)
        return None
    if isinstance(step, Ask):
        digits = await port.ask(step)
        log.debug("ivr.digits", question=step.name, digits=digits)
        return digits
    assert tenant is not None  # an unidentified caller never gets past the first Say
    if isinstance(step, Load):
        return await _load(ctx, tenant.name, caller, log)
    if isinstance(step, Save):
        event = _event(step.change, call, ctx, tenant.name, caller, language)
        sealed = await _bounded(ctx, ctx.ledger.append(event), log, "save")
        if sealed is None:
            return False
        saved.append(sealed)
        log.info("ivr.saved", action=sealed.action.value, categories=list(sealed.categories) or None,
                 entity=sealed.entity or None, record_id=sealed.id, seq=sealed.seq)
        return True
    raise TypeError(f"unknown step {step!r}")  # pragma: no cover


async def _load(ctx: IvrContext, tenant: str, caller: Caller, log: Log) -> Snapshot | None:
    digits = int(caller.e164[1:])
    prefs = await _bounded(ctx, ctx.ledger.preferences(tenant, digits), log, "load")
    if prefs is None:
        return None
    consents = await _bounded(ctx, ctx.ledger.consents(tenant, digits), log, "load")
    if consents is None:
        return None
    now = ctx.clock()
    held = sorted(
        ((state.updated_at or now, entity) for entity, state in consents.items()
         if state.status is ConsentStatus.GRANTED and (state.expires_at is None or state.expires_at > now)),
    )
    return Snapshot(declined=prefs.declined, consents=tuple(entity for _, entity in held))


def _event(change: Change, call: IvrCall, ctx: IvrContext, tenant: str, caller: Caller,
           language: str) -> LedgerEvent:
    evidence = Evidence(
        channel=Channel.IVR, captured_at=ctx.clock(), source=call.caller_id.strip()[:64] or caller.e164,
        shown=f"dncgate/{language}/{change.prompt} keys={change.keys}", captured_by=CAPTURED_BY,
    )
    return LedgerEvent(tenant=tenant, action=change.action, callee=caller.e164, entity=change.entity,
                       categories=change.categories, evidence=evidence,
                       detail=f"ivr {call.door} call {call.call_id}"[:200])


async def _bounded(ctx: IvrContext, operation: Awaitable[_T], log: Log, what: str) -> _T | None:
    try:
        async with asyncio.timeout(ctx.settings.ledger_deadline):
            return await operation
    except TimeoutError:
        log.error(f"ivr.{what}_failed", error=f"no answer within {ctx.settings.ledger_deadline} s")
    except (StoreError, LedgerError) as exc:
        log.error(f"ivr.{what}_failed", error=str(exc), error_type=type(exc).__name__)
    return None


__all__ = [
    "CALLER_GONE", "LANGUAGES", "CallerGone", "End", "IvrCall", "IvrContext", "IvrPort", "IvrResult",
    "identify", "language_of", "run_ivr",
]
