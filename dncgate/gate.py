"""The one check path every door shares: request -> numbers -> store -> decide() -> log + audit.

A door (FastAGI, classic AGI, ESL, the CLI) builds a :class:`CheckRequest` and awaits
``Gate.check()``. The store lookup has a deadline; a store that is down, slow or corrupt gives
``FactsUnavailable`` and ``decide()`` applies the tenant's failure policy (fail closed for
marketing by default). Every decision is logged as one JSON line and queued for the durable audit.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

import structlog

from dncgate.audit import AuditSink
from dncgate.audit_record import AuditRecord, new_decision_id
from dncgate.clock import Clock, utc_now
from dncgate.enforcement.limits import RestrictionCounter
from dncgate.enforcement.model import originator_keys
from dncgate.model import (
    FAILURE_REASONS,
    CallAttempt,
    Decision,
    Facts,
    FactsUnavailable,
    Originator,
    Purpose,
    SenderPort,
    TenantPolicy,
    Verdict,
)
from dncgate.numbers import Subscriber, normalise
from dncgate.policy import decide
from dncgate.settings.schema import StoreSettings
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

if TYPE_CHECKING:  # prometheus_client costs ~25 ms to import: classic AGI starts a process per call
    from dncgate.metrics import GateMetrics

# A language as switches name their sound directories ("en", "fr-CA", "en_GB", "zh-Hans-CN"): it
# ends up in a file path and in switch arguments, so nothing else ("../", FreeSWITCH's "${...}").
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
MAX_LANGUAGE_CHARS = 35
UNKNOWN_TENANT_LABEL = "unknown"  # the metrics' tenant label for a tenant that is not configured


def language_tag(value: str | None) -> str | None:
    """``value`` when it is a short language tag (BCP 47-like, at most 35 characters), else None."""
    if value is None or len(value) > MAX_LANGUAGE_CHARS or not _LANGUAGE_TAG.fullmatch(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """What a door asks of :meth:`Gate.check`: the number as the switch gave it, which door asked
    (``agi``, ``agi-classic``, ``esl``, ``api``, ``cli``, ``sip-message``, ``smpp``: the audit's and
    the metrics' label) and what it knows of the call. None: the default tenant, the tenant's default
    purpose and its own language; ``sender`` is a message's sender port (None for a call)."""

    dialled: str
    door: str
    tenant: str | None = None
    purpose: str | None = None
    category: str | None = None
    originator: Originator = field(default_factory=Originator)
    language: str | None = None
    sender: SenderPort | None = None  # dncgate.messages


@dataclass(frozen=True, slots=True)
class CheckResult:
    decision: Decision
    decision_id: str
    attempt: CallAttempt
    door: str
    dialled: str
    latency_us: int

    @property
    def record(self) -> AuditRecord:
        """The audit record of this decision (built on demand: not needed on the call's path)."""
        return AuditRecord.of(
            self.attempt, self.decision, decision_id=self.decision_id, door=self.door, dialled=self.dialled,
            latency_us=self.latency_us,
        )


# Runs a callback once the door has handed the verdict to the switch (see Gate.check's ``defer``).
Deferrer = Callable[[Callable[[], None]], None]
# Told of every decision after its verdict went out (the early warning's signals); must not block.
Observer = Callable[[CheckResult], None]
# A store's answer without a round trip (tenant, number, originator keys), or None: ask facts().
LocalAnswer = Callable[[str, int, Sequence[str]], Facts | None]


class Gate:
    def __init__(
        self,
        tenants: Mapping[str, TenantPolicy],
        store: ListStore,
        audit: AuditSink,
        *,
        default_tenant: str = "default",
        store_deadline: float = StoreSettings().timeout,  # [store] timeout_ms's default
        metrics: GateMetrics | None = None,
        clock: Clock = utc_now,
        list_age: Callable[[], timedelta | None] | None = None,
    ) -> None:
        self.tenants = tenants
        self.store = store
        self.audit = audit
        self.default_tenant = default_tenant
        self.store_deadline = store_deadline
        self.metrics = metrics
        self._clock = clock
        # The national list's age, cached off the call's path (``lists.freshness``): fills Facts.list_age.
        self.list_age = list_age
        # A restricted originator's calls per minute and in progress, counted here (enforcement.limits).
        self.restrictions = RestrictionCounter()
        self.observers: list[Observer] = []

    async def check(
        self, request: CheckRequest, log: structlog.typing.FilteringBoundLogger, *, defer: Deferrer | None = None,
    ) -> CheckResult:
        """Decide one call. Never raises for bad input or a failed store: that is a decision too.

        The audit record is spooled before this returns (``AuditSink.submit``: one local append);
        the log line, the store's audit write and the metrics come after the verdict is handed
        over: on the loop's next turn, or through ``defer`` when the door knows better (the
        FastAGI door runs them once the session's socket is closed, so that they do not delay
        Asterisk's reply to the verdict either). ``defer`` must run what it is given exactly once.
        """
        started = time.perf_counter_ns()
        tenant, unknown_tenant = self._tenant(request.tenant)
        purpose = _purpose(request.purpose, tenant.default_purpose)
        callee = normalise(request.dialled, tenant.dial_plan)
        language = language_tag(request.language)  # None: the tenant's own language
        attempt = CallAttempt(
            tenant=tenant,
            originator=request.originator,
            purpose=purpose,
            callee=callee,
            at=self._clock(),
            category=request.category or None,
            language=language,
            unknown_tenant=unknown_tenant,
            sender=request.sender,
        )
        facts: Facts | FactsUnavailable
        if unknown_tenant is not None:
            facts = Facts()  # no store lookup: nothing in it belongs to a tenant that does not exist
        elif isinstance(callee, Subscriber):
            facts = await self._facts(tenant.name, callee.digits, request.originator)
        else:
            facts = Facts()
        if self.list_age is not None and isinstance(facts, Facts):
            facts = with_list_age(facts, self.list_age())
        restriction = None
        if isinstance(facts, Facts) and purpose is Purpose.MARKETING:
            restriction = facts.originator_restriction
            if restriction is not None and self.restrictions.over(restriction, time.monotonic()):
                facts = replace(facts, originator_restricted=True)
        decision = decide(attempt, facts)
        if restriction is not None and decision.outcome is Verdict.ALLOW:
            self.restrictions.admit(restriction, time.monotonic())
        latency_us = (time.perf_counter_ns() - started) // 1000
        result = CheckResult(decision, new_decision_id(), attempt, request.door, request.dialled, latency_us)
        record = result.record
        self.audit.submit(record)  # spooled before the door sends the verdict: it survives a kill -9
        refused = request.language if request.language and language is None else None
        finish = partial(self._record, log, result, record, refused)
        if defer is None:
            # The door writes the verdict synchronously when check() returns: this runs after it.
            asyncio.get_running_loop().call_soon(finish)
        else:
            defer(finish)
        return result

    def _record(
        self, log: structlog.typing.FilteringBoundLogger, result: CheckResult, record: AuditRecord,
        refused_language: str | None,
    ) -> None:
        if refused_language is not None:
            log.warning("gate.language_refused", door=result.door, language=refused_language[:MAX_LANGUAGE_CHARS + 5],
                        used=result.attempt.tenant.language, decision_id=result.decision_id)
        _log_decision(log, result.decision, record)
        for observer in self.observers:
            try:
                observer(result)
            except Exception as exc:  # noqa: BLE001 -- an observer's fault never reaches the call's path
                log.error("gate.observer_failed", error=repr(exc), decision_id=result.decision_id)
        if self.metrics is not None:
            # Only configured tenants are labels: any name a request makes up would be a new series.
            # (Configured when the call began: a reload since then does not relabel it.)
            known = result.attempt.unknown_tenant is None
            self.metrics.observe(record, record.latency_us, tenant=record.tenant if known else UNKNOWN_TENANT_LABEL,
                                 language_refused=refused_language is not None)

    def _tenant(self, name: str | None) -> tuple[TenantPolicy, str | None]:
        """The tenant the request names (None: the default tenant), and the name when none has it.

        A blank name ("tenant=" from a dialplan whose variable came out empty) is not the default
        tenant: it is a configuration fault like a name no tenant has, decided ``unknown_tenant``
        under the built-in failure defaults (``TenantPolicy``: marketing rejected 603, service
        allowed, enforce), whatever any tenant's own policy says; the dial plan, which only
        tells emergency numbers apart, is the default tenant's."""
        key = self.default_tenant if name is None else name.strip()
        tenant = self.tenants.get(key) if key else None
        if tenant is not None:
            return tenant, None
        default = self.tenants.get(self.default_tenant)
        fallback = TenantPolicy(name=_safe_name(key))
        if default is not None:
            fallback = replace(fallback, dial_plan=default.dial_plan)
        return fallback, name if name is not None else key

    async def _facts(self, tenant: str, number: int, originator: Originator) -> Facts | FactsUnavailable:
        keys = originator_keys(originator.account, originator.trunk, originator.caller_id, originator.entity)
        try:
            # A store that can answer at once (the in-process replica: dncgate.replica.store) is asked so first.
            answer_now: LocalAnswer | None = getattr(self.store, "answer_now", None)
            if answer_now is not None and (facts := answer_now(tenant, number, keys)) is not None:
                return facts
            async with asyncio.timeout(self.store_deadline):
                return await self.store.facts(tenant, number, entity=originator.entity, originators=keys)
        except TimeoutError:
            self._store_failed()
            return FactsUnavailable(f"store did not answer within {self.store_deadline * 1000:.0f} ms")
        except StoreError as exc:
            self._store_failed()
            return FactsUnavailable(f"{type(exc).__name__}: {exc}")

    def _store_failed(self) -> None:
        if self.metrics is not None:
            self.metrics.store_failed("facts")


_PURPOSES = {purpose.value: purpose for purpose in Purpose}


def with_list_age(facts: Facts, age: timedelta | None) -> Facts:
    """``replace(facts, list_age=age)``, or ``facts`` itself when it has that age already (the
    common case: the list's age changes once a poll, not once a call)."""
    return facts if facts.list_age == age else replace(facts, list_age=age)


def _purpose(value: str | None, default: Purpose) -> Purpose:
    return _PURPOSES.get((value or "").strip().lower(), default)


def _safe_name(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "_.-")[:64] or "unknown"


def _log_decision(log: structlog.typing.FilteringBoundLogger, decision: Decision, record: AuditRecord) -> None:
    fields = record.as_dict()
    if decision.verdict is Verdict.ALLOW and decision.reason in FAILURE_REASONS:
        # Let through because of a failure: always said out loud.
        log.warning("decision.allowed_on_failure", **fields)
    elif decision.verdict is Verdict.REJECT and decision.reason in FAILURE_REASONS:
        log.warning("decision.rejected_on_failure", **fields)
    elif decision.outcome is not decision.verdict:
        log.info("decision.monitored", **fields)
    elif decision.verdict is Verdict.REJECT:
        log.info("decision.rejected", **fields)
    else:
        log.info("decision.allowed", **fields)
