"""The FreeSWITCH outbound-socket handler: one call in, a transfer or a reject out.

Dialplan (see ``dialplan/freeswitch/``)::

    <action application="socket" data="127.0.0.1:8084 async full"/>
    <action application="respond" data="603 Decline"/>      <!-- reached only if we fail -->

The layout is FAIL-CLOSED: FreeSWITCH continues after ``socket`` when the socket cannot be
opened or closes without a transfer, so nothing but a reject follows it.  An allowed call is
moved on by this handler with ``transfer`` to a continuation extension; nothing else ever lets a
call through.

What it reads (all from the ``connect`` reply, no extra round trips; ``full`` mode sends every
channel variable)::

    number    channel variable dncgate_number, else Caller-Destination-Number without the
              configured strip_prefix (the ``8<number>`` layout of the fail-closed lab dialplan)
    tenant    dncgate_tenant      purpose   dncgate_purpose     category  dncgate_category
    account   dncgate_account, else accountcode                  entity    dncgate_entity
    trunk     dncgate_trunk       language  dncgate_language, else default_language
    caller id Caller-Caller-ID-Number

What it sets, in one ``multiset`` before acting: dncgate_verdict (allow|reject),
dncgate_outcome (what the policy concluded; differs in monitor mode), dncgate_reason,
dncgate_sip_code, dncgate_decision_id, dncgate_callee (the number checked, when plain) and, on
a reject, ``sip_reason`` (the Reason header FreeSWITCH puts on the final response).

Reject: ``pre_answer``; ``playback`` of ``{sounds_dir}/{announcement}.{sound_ext}`` (mod_sndfile
first tries ``<dir>/<rate>/<file>``, so the ``prompts/freeswitch/<lang>/<rate>/`` tree installed
as ``{sounds_dir}/dncgate/`` plays at the channel's rate); then ``hangup`` with the cause that
mod_sofia maps to the SIP code (603 CALL_REJECTED, 607 UNWANTED) or, for codes no cause maps to
(608), ``respond <code> <phrase>``.  A call enforcement blocked (``originator_suspended``,
``originator_restricted``) is answered ATIS-1000099 "603+": ``respond 603 Network Blocked`` (the
tenant's ``[tenants.NAME.enforcement]`` code and phrase) with ``sip_reason`` set to
``SIP;cause=603;text="Network Blocked";location="<network>";redress="<uri>"``.  Allow: ``transfer``
to ``transfer_to`` and wait (bounded) for its CHANNEL_EXECUTE_COMPLETE.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import structlog

from dncgate.esl.ending import PROTO_CAUSE_VARIABLE, kill, schedule_hangup_command, wait_gone
from dncgate.esl.errors import EslConnectionClosed, EslError
from dncgate.esl.messages import ChannelData
from dncgate.esl.outbound import Handler, OutboundSession
from dncgate.gate import CheckRequest, CheckResult, Gate
from dncgate.model import ANALYTICS_REASONS, FAILURE_REASONS, AnalyticsBlock, Decision, Originator, Verdict
from dncgate.settings import EslSettings  # [esl]: the handler's keys (strip_prefix, transfer_to, ...)

__all__ = ["CheckCall", "esl_check_handler", "read_call", "reject_deadline", "reject_guard_delay"]

Log = structlog.typing.FilteringBoundLogger

# What may go into a dialplan application argument that FreeSWITCH parses and expands:
# no spaces (argument separators), no ``$``/``{`` (variable expansion), no quotes.
_TOKEN = re.compile(r"[A-Za-z0-9_+*#.\-]{1,64}")

# mod_sofia hangup_cause_to_sip() (FreeSWITCH 1.11.1): the hangup causes that give these codes.
# 608 has no cause (CALL_REJECTED maps to 603), so 608 is sent with ``respond``.
DEFAULT_CAUSES: Mapping[int, str] = MappingProxyType({603: "CALL_REJECTED", 607: "UNWANTED"})
DEFAULT_PHRASES: Mapping[int, str] = MappingProxyType({603: "Decline", 607: "Unwanted", 608: "Rejected"})
NO_CAUSE_HANGUP = "CALL_REJECTED"  # what ``respond 608`` hangs up with (sofia_glue_sip_cause_to_freeswitch)


@dataclass(frozen=True, slots=True)
class CheckCall:
    """What the handler read from the channel."""

    request: CheckRequest
    number: str  # what was checked (dialled form, prefix stripped)
    destination: str  # Caller-Destination-Number without the prefix
    context: str
    purpose: str  # as the channel gave it ("" when unset)


def read_call(channel: ChannelData, settings: EslSettings, door: str = "esl") -> CheckCall:
    raw_destination = (channel.destination_number or "").strip()
    destination = raw_destination
    prefix = settings.strip_prefix
    if prefix and destination.startswith(prefix) and len(destination) > len(prefix):
        destination = destination[len(prefix) :]
    number = (channel.variable("dncgate_number") or "").strip() or destination

    def var(*names: str) -> str:
        for name in names:
            value = (channel.variable(name) or "").strip()
            if value:
                return value
        return ""

    purpose = var("dncgate_purpose")
    request = CheckRequest(
        dialled=number,
        door=door,
        tenant=var("dncgate_tenant") or None,
        purpose=purpose or None,
        category=var("dncgate_category") or None,
        originator=Originator(
            account=var("dncgate_account", "accountcode"),
            trunk=var("dncgate_trunk"),
            caller_id=channel.caller_id_number or "",
            entity=var("dncgate_entity"),
        ),
        language=var("dncgate_language", "default_language") or None,
    )
    return CheckCall(request, number, destination, channel.context or "", purpose.lower())


def esl_check_handler(gate: Gate, settings: EslSettings | None = None) -> Handler:
    """An :class:`~dncgate.esl.outbound.OutboundServer` handler bound to ``gate``."""
    cfg = settings if settings is not None else EslSettings()

    async def handle(session: OutboundSession) -> None:
        call = read_call(session.channel, cfg)
        log = session.log.bind(number=call.number, tenant=call.request.tenant, purpose=call.purpose or None)
        if cfg.strip_prefix and not (session.channel.destination_number or "").startswith(cfg.strip_prefix):
            log.warning("esl.check.prefix_missing", prefix=cfg.strip_prefix)
        try:
            result = await gate.check(call.request, log)
        except Exception as exc:  # noqa: BLE001 - any gate fault ends in the dialplan's reject
            _fail(log, call, "gate", exc)
            return
        log = log.bind(decision_id=result.decision_id)
        stage = "myevents"
        try:
            subscribed, variables_set = await session.myevents_and_execute(
                "multiset", _multiset_arg(_variables(result, call, cfg)))
            subscribed.result()
            stage = "set_variables"
            variables_set.result()
            if result.decision.verdict is Verdict.ALLOW:
                stage = "transfer"
                await _allow(session, log, call, result.decision, cfg)
            else:
                stage = "reject"
                await _reject(session, log, result.decision, cfg,
                              decision_block(result.decision, result.attempt.tenant.analytics_block))
        except EslError as exc:
            _fail(log, call, stage, exc)
            raise  # the server logs the session outcome (peer_closed, timeout, ...)

    return handle


async def _allow(session: OutboundSession, log: Log, call: CheckCall, decision: Decision,
                 cfg: EslSettings) -> None:
    target = _transfer_target(cfg, call)
    if target is None:
        log.error("esl.check.transfer_refused", reason=decision.reason.value,
                  detail="number or context not safe for a dialplan argument; the dialplan rejects")
        return
    if decision.reason in FAILURE_REASONS:
        # Let through because of a failure (the tenant's failure policy said allow): say so.
        log.warning("esl.check.allowed_on_failure", reason=decision.reason.value, detail=decision.detail,
                    transfer=target)
    try:
        async with asyncio.timeout(cfg.settle_deadline):
            done = await session.execute("transfer", target, wait=True)
    except TimeoutError:
        # The transfer was accepted (+OK) and is queued on the channel; FreeSWITCH runs the
        # queue when the socket closes, so this is not a failure, only unconfirmed.
        log.warning("esl.check.transfer_unconfirmed", transfer=target, deadline_s=cfg.settle_deadline)
        return
    log.info("esl.check.allowed", reason=decision.reason.value, mode=decision.mode.value,
             monitored_outcome=decision.outcome.value if decision.outcome is not decision.verdict else None,
             transfer=target, response=done.application_response if done is not None else None)


async def _reject(session: OutboundSession, log: Log, decision: Decision, cfg: EslSettings,
                  block: AnalyticsBlock | None = None) -> None:
    code = decision.sip_code or cfg.fallback_sip_code
    cause = DEFAULT_CAUSES.get(code)
    # What ends the call through the API (uuid_kill, sched_hangup): the code's cause, or for a code
    # no cause maps to (608) CALL_REJECTED with proto_specific_hangup_cause=sip:<code> (multiset).
    api_cause = cause or NO_CAUSE_HANGUP
    queue_free = True
    if cfg.announce and decision.announcement:
        path = f"{cfg.sounds_dir.rstrip('/')}/{decision.announcement}.{cfg.sound_ext}"
        queue_free = await _announce(session, log, path, api_cause, cfg)
    fields: dict[str, object] = {"reason": decision.reason.value, "sip_code": code}
    if not queue_free:
        # The playback may be blocking the channel's queue: a queued hangup would never run.
        await _force(session, log, api_cause, "playback_deadline", fields, cfg)
        return
    if cause is not None and block is None:
        await session.hangup(cause)
        fields["cause"] = cause
    else:  # 608, or an analytics block: the code with its own phrase ("603 Network Blocked")
        phrase = block.reason_phrase if block is not None else DEFAULT_PHRASES.get(code, "Rejected")
        respond = fields["respond"] = f"{code} {phrase}"
        await session.execute("respond", respond)
    if await wait_gone(session, cfg.settle_deadline):
        log.info("esl.check.rejected", **fields)
    else:
        await _force(session, log, api_cause, "hangup_not_seen", fields, cfg)


async def _force(session: OutboundSession, log: Log, cause: str, why: str, fields: dict[str, object],
                 cfg: EslSettings) -> None:
    """End the call through the API thread (``uuid_kill``), past whatever the channel is running."""
    answer = await kill(session, cause)
    gone = await wait_gone(session, cfg.settle_deadline)
    event = "esl.check.rejected" if gone else "esl.check.reject_unconfirmed"
    (log.info if gone else log.error)(event, **fields, forced=why, kill_cause=cause, answer=answer[:120])


def decision_block(decision: Decision, block: AnalyticsBlock) -> AnalyticsBlock | None:
    """The tenant's "603+" answer when analytics (enforcement) blocked the call, else None."""
    return block if decision.reason in ANALYTICS_REASONS else None


def analytics_reason(block: AnalyticsBlock, code: int) -> str:
    """The Reason header of an analytics block (ATIS-1000099 "603+"): cause, text, where, and redress."""
    parts = [f"SIP;cause={code}", f'text="{block.reason_phrase}"']
    if block.location:
        parts.append(f'location="{block.location}"')
    if block.redress:
        parts.append(f'redress="{block.redress}"')
    return ";".join(parts)


def reject_deadline(cfg: EslSettings) -> float:
    """The longest a reject takes once decided: the announcement, then a settle for the hangup to
    be seen and one for the forced end.  The dialplan's park_timeout must exceed it."""
    return (cfg.playback_deadline if cfg.announce else 0.0) + 2 * cfg.settle_deadline


def reject_guard_delay(cfg: EslSettings) -> int:
    """Whole seconds for ``sched_hangup``: after the gate's own bound, so it never pre-empts it."""
    return math.ceil(reject_deadline(cfg)) + 1


async def _announce(session: OutboundSession, log: Log, path: str, cause: str, cfg: EslSettings) -> bool:
    """The switch's own bound on the reject (``sched_hangup``: it holds when the gate is gone too),
    early media, then the announcement; a failed announcement never stops the reject.

    The bound goes in the pre_answer's write (:meth:`OutboundSession.api_and_execute`): a failed
    wait for its answer ends the session as a failed :func:`schedule_hangup` would, and the
    announcement's deadline runs from its answer.  False when the playback did not finish in time:
    it may block the channel's queue."""
    delay = reject_guard_delay(cfg)
    guarded = False

    def on_answer(answer: str) -> None:
        nonlocal guarded
        guarded = True
        scope.reschedule(asyncio.get_running_loop().time() + cfg.playback_deadline)
        answer = answer.strip()
        if not answer.startswith("+OK"):
            log.warning("esl.check.guard_refused", answer=answer[:120], delay_s=delay)

    try:
        async with asyncio.timeout(None) as scope:
            await session.api_and_execute(schedule_hangup_command(session, delay, cause), "pre_answer",
                                          on_answer=on_answer)
            done = await session.execute("playback", path, wait=True)
    except EslConnectionClosed:
        raise
    except TimeoutError:
        if not guarded:
            raise  # the bound's answer did not come (EslTimeoutError): the connection is failed
        log.warning("esl.check.announcement_timeout", file=path, deadline_s=cfg.playback_deadline)
        return False
    except EslError as exc:
        if not guarded:
            raise
        log.warning("esl.check.announcement_failed", file=path, error=str(exc), error_type=type(exc).__name__)
        return True
    response = done.application_response if done is not None else None
    if response != "FILE PLAYED":
        log.warning("esl.check.announcement_not_played", file=path, response=response)
    return True


def _variables(result: CheckResult, call: CheckCall, cfg: EslSettings) -> dict[str, str]:
    decision = result.decision
    variables = {
        "dncgate_verdict": decision.verdict.value,
        "dncgate_outcome": decision.outcome.value,
        "dncgate_reason": decision.reason.value,
        "dncgate_sip_code": str(decision.sip_code or ""),
        "dncgate_decision_id": result.decision_id,
    }
    if _TOKEN.fullmatch(call.number):
        variables["dncgate_callee"] = call.number
    if decision.verdict is Verdict.REJECT:
        block = decision_block(decision, result.attempt.tenant.analytics_block)
        if block is not None:
            variables["sip_reason"] = analytics_reason(block, decision.sip_code or block.sip_code)
        elif cfg.sip_reason:
            variables["sip_reason"] = cfg.sip_reason
        code = decision.sip_code or cfg.fallback_sip_code
        if code not in DEFAULT_CAUSES:  # 608: what an API hangup (uuid_kill, sched_hangup) sends instead of 603
            variables[PROTO_CAUSE_VARIABLE] = f"sip:{code}"
    return variables


def _multiset_arg(variables: Mapping[str, str]) -> str:
    """``multiset`` data: space-separated, or ``^^|``-delimited when a value has a space."""
    pairs = [f"{name}={value}" for name, value in variables.items()]
    for pair in pairs:
        if "$" in pair or "\n" in pair or "\r" in pair:
            raise ValueError(f"unsafe channel variable value: {pair!r}")  # our own values only
    if not any(" " in pair for pair in pairs):
        return " ".join(pairs)
    if any("|" in pair for pair in pairs):
        raise ValueError("channel variable values contain both a space and '|'")
    return "^^|" + "|".join(pairs)


def _transfer_target(cfg: EslSettings, call: CheckCall) -> str | None:
    values = {"number": call.number, "destination": call.destination, "context": call.context}
    if not all(_TOKEN.fullmatch(value) for value in values.values() if value):
        return None
    if not call.number:
        return None
    target = cfg.transfer_to.format(**values).strip()
    return target or None


def _fail(log: Log, call: CheckCall, stage: str, exc: BaseException) -> None:
    """No transfer will happen: the dialplan's reject (or its service fail-open branch) decides."""
    fields = {"stage": stage, "error": str(exc), "error_type": type(exc).__name__}
    if call.purpose == "service":
        # The shipped dialplan continues a service call when dncgate_service_on_failure=allow.
        log.error("esl.check.failed_service_may_continue", **fields,
                  fallback="dialplan: service call continues if dncgate_service_on_failure=allow, else rejected")
    else:
        log.error("esl.check.failed", **fields, fallback="dialplan rejects")
