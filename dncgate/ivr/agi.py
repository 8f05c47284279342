"""The IVR over FastAGI: route ``/ivr`` on the gate's AgiServer, prompts with STREAM FILE / GET DATA.

Dialplan (``dialplan/asterisk/extensions_dncgate_ivr.conf``)::

    exten => s,1,Answer()
     same => n,AGI(agi://127.0.0.1:4573/ivr?tenant=acme&language=zh)

What it reads: ``?tenant=`` (else the default tenant), ``?language=`` (else ``agi_language``,
else the tenant's; prompts exist in en and zh), the caller ID from ``agi_callerid`` and its
presentation from ``agi_callingpres`` (restricted or unavailable = withheld).

How a question is asked: every prompt but the last with ``STREAM FILE <prompt> "0123456789*#"``
(a key press interrupts it: barge-in), the last with ``GET DATA <prompt> <timeout ms> <max
digits>`` (``#`` ends the input early). When a key interrupted an earlier prompt, the remaining
digits are read with ``WAIT FOR DIGIT <timeout ms>``. A ``-1`` result or a 511 reply means the
caller hung up. At the end the handler sends ``HANGUP``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

from dncgate.agi import commands as cmd
from dncgate.agi.codec import AgiReply
from dncgate.agi.errors import AgiCommandError, AgiConnectionLost, AgiHangup
from dncgate.agi.session import AgiSession
from dncgate.ivr.flow import Ask
from dncgate.ivr.runner import CallerGone, IvrCall, IvrContext, language_of, run_ivr

AgiHandler = Callable[[AgiSession], Awaitable[None]]

ROUTE = "/ivr"
KEYS = "0123456789*#"
PROMPT_DEADLINE = 60.0  # one prompt file must finish playing within this
_PRES_WITHHELD = 0x60  # AST_PRES_RESTRICTED (0x20) | AST_PRES_UNAVAILABLE (0x40)


def sound(language: str, prompt: str) -> str:
    """The Asterisk sound name of a prompt (``prompts/asterisk`` installed as ``sounds/dncgate``)."""
    return f"dncgate/{language}/{prompt}"


class AgiPort:
    """:class:`~dncgate.ivr.runner.IvrPort` over one AGI session."""

    def __init__(self, session: AgiSession, language: str) -> None:
        self.session = session
        self.language = language

    async def _command(self, line: str, reply_timeout: float) -> AgiReply:
        try:
            reply = await self.session.command(line, reply_timeout=reply_timeout)
        except (AgiHangup, AgiConnectionLost) as exc:
            raise CallerGone(str(exc)) from exc
        if reply.result_text == "-1":
            raise CallerGone(f"{line.split(' ', 2)[:2]} returned -1")
        return reply

    async def _stream(self, prompt: str, escape: str) -> str:
        """Play one prompt; the key that interrupted it, or ""."""
        reply = await self._command(cmd.stream_file(sound(self.language, prompt), escape), PROMPT_DEADLINE)
        return chr(reply.result) if reply.result and 0 < reply.result < 128 else ""

    async def say(self, prompts: Sequence[str]) -> None:
        for prompt in prompts:
            await self._stream(prompt, "")

    async def ask(self, step: Ask) -> str:
        timeout_ms = max(1, round(step.timeout * 1000))
        for prompt in step.prompts[:-1]:
            key = await self._stream(prompt, KEYS)
            if key:
                return await self._rest(key, step, timeout_ms)
        last = cmd.identifier(sound(self.language, step.prompts[-1]), "file name")
        reply = await self._command(f"GET DATA {last} {timeout_ms} {step.max_digits}",
                                    PROMPT_DEADLINE + step.timeout * (step.max_digits + 1))
        return reply.result_text

    async def _rest(self, digits: str, step: Ask, timeout_ms: int) -> str:
        """After a key interrupted a prompt: the remaining digits, one WAIT FOR DIGIT each."""
        while digits[-1] != step.terminator and len(digits) < step.max_digits:
            reply = await self._command(f"WAIT FOR DIGIT {timeout_ms}", step.timeout + 5.0)
            if not reply.result:
                break  # timeout: what was pressed so far is the answer
            digits += chr(reply.result)
        return digits.replace(step.terminator, "")

    async def hangup(self) -> None:
        with contextlib.suppress(AgiCommandError, AgiHangup, AgiConnectionLost):
            await self.session.hangup()


def read_call(session: AgiSession) -> IvrCall:
    request = session.request
    caller_id = (request.get("callerid", "") or "").strip()
    if caller_id.lower() in {"unknown", "anonymous", "restricted", "private", "unavailable"}:
        caller_id = ""
    try:
        pres = int(request.get("callingpres", "0") or "0")
    except ValueError:
        pres = 0
    return IvrCall(
        tenant=request.params.get("tenant") or None,
        caller_id=caller_id,
        withheld=bool(pres & _PRES_WITHHELD),
        call_id=request.uniqueid,
        door="agi",
        language=request.params.get("language") or request.get("language") or None,
    )


def ivr_agi_handler(ctx: IvrContext) -> AgiHandler:
    """The ``/ivr`` session handler."""

    async def handle(session: AgiSession) -> None:
        call = read_call(session)
        language = language_of(call.language, ctx.tenants.get(call.tenant or ctx.default_tenant))
        await run_ivr(AgiPort(session, language), call, ctx, session.log)

    return handle


def with_ivr(check: AgiHandler, ivr: AgiHandler) -> AgiHandler:
    """One AgiServer handler: ``/ivr`` to the IVR, everything else to ``check`` (unchanged)."""

    async def dispatch(session: AgiSession) -> None:
        if session.request.network and session.request.script.rstrip("/") == ROUTE:
            await ivr(session)
        else:
            await check(session)

    return dispatch
