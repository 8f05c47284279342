"""The IVR over FreeSWITCH's outbound event socket, on the gate's OutboundServer.

Dialplan (``dialplan/freeswitch/dncgate_ivr.xml``)::

    <action application="set" data="dncgate_app=ivr"/>
    <action application="set" data="dncgate_tenant=acme"/>
    <action application="answer"/>
    <action application="socket" data="127.0.0.1:8084 async full"/>
    <action application="hangup"/>

The server sends a session here when the channel variable ``dncgate_app`` is ``ivr`` (everything
else still goes to the check handler). What it reads from the connect reply: ``dncgate_tenant``,
``dncgate_language`` (else ``default_language``, else the tenant's), the caller ID
(``Caller-Caller-ID-Number``) and ``Caller-Privacy-Hide-Number`` (withheld).

Prompts play with ``playback file_string://a.wav!b.wav``; a question is one
``play_and_get_digits <min=1> <max> <tries=1> <timeout ms> # file_string://... silence_stream://250
dncgate_ivr_<n> [0-9*]+ <timeout ms>`` whose digits come back in the channel variable
``dncgate_ivr_<n>`` (a fresh name per question, so an unanswered one never reads an old value):
from the CHANNEL_EXECUTE_COMPLETE event, else with ``uuid_getvar``. The flow, not FreeSWITCH,
handles retries and invalid input.

Each prompt is bounded (``prompt_deadline``; a question also gets its digit timeouts).  A prompt
that does not finish may block the channel's queue (a profile without ``rtp-timer-name`` and a
caller that sends no RTP: recorded on FreeSWITCH 1.11.1), and then a queued ``hangup`` never runs;
so the call is ended through the API (``uuid_kill``, :mod:`dncgate.esl.ending`), and the final
hang-up is confirmed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence

from dncgate.esl.ending import kill, wait_gone
from dncgate.esl.errors import EslConnectionClosed, EslError
from dncgate.esl.outbound import Handler, OutboundSession
from dncgate.ivr.flow import Ask
from dncgate.ivr.runner import CallerGone, IvrCall, IvrContext, language_of, run_ivr
from dncgate.settings import EslSettings

APP_VARIABLE = "dncgate_app"
APP = "ivr"
DIGIT_PATTERN = "[0-9*]+"
PROMPT_DEADLINE_S = 120.0
SETTLE_DEADLINE_S = 2.0
HANGUP_CAUSE = "NORMAL_CLEARING"


class PromptStuck(CallerGone):
    """A prompt did not finish in time; the call was ended through the API."""


class EslPort:
    """:class:`~dncgate.ivr.runner.IvrPort` over one outbound session."""

    def __init__(self, session: OutboundSession, language: str, sounds_dir: str = "/usr/share/freeswitch/sounds",
                 prompt_deadline: float = PROMPT_DEADLINE_S, settle_deadline: float = SETTLE_DEADLINE_S) -> None:
        self.session = session
        self.language = language
        self.sounds_dir = sounds_dir.rstrip("/")
        self.prompt_deadline = prompt_deadline
        self.settle_deadline = settle_deadline
        self._questions = itertools.count(1)

    def path(self, prompt: str) -> str:
        return f"{self.sounds_dir}/dncgate/{self.language}/{prompt}.wav"

    def files(self, prompts: Sequence[str]) -> str:
        paths = [self.path(p) for p in prompts]
        return paths[0] if len(paths) == 1 else "file_string://" + "!".join(paths)

    async def say(self, prompts: Sequence[str]) -> None:
        deadline = asyncio.timeout(self.prompt_deadline)
        try:
            async with deadline:
                await self.session.execute("playback", self.files(prompts), wait=True)
        except EslConnectionClosed as exc:
            raise CallerGone(str(exc)) from exc
        except TimeoutError:
            if not deadline.expired():
                raise
            await self._stuck("playback", prompts, self.prompt_deadline)

    async def ask(self, step: Ask) -> str:
        var = f"dncgate_ivr_{next(self._questions)}"
        timeout_ms = max(1, round(step.timeout * 1000))
        arg = (f"1 {step.max_digits} 1 {timeout_ms} {step.terminator} {self.files(step.prompts)} "
               f"silence_stream://250 {var} {DIGIT_PATTERN} {timeout_ms}")
        bound = self.prompt_deadline + step.timeout * (step.max_digits + 1)
        deadline = asyncio.timeout(bound)
        try:
            async with deadline:
                done = await self.session.execute("play_and_get_digits", arg, wait=True)
                value = done.variable(var) if done is not None else None
                if value is None:
                    value = await self.session.getvar(var)
        except EslConnectionClosed as exc:
            raise CallerGone(str(exc)) from exc
        except TimeoutError:
            if not deadline.expired():
                raise
            await self._stuck("play_and_get_digits", step.prompts, bound)
        return (value or "").replace(step.terminator, "")

    async def _stuck(self, app: str, prompts: Sequence[str], bound: float) -> None:
        """The prompt may block the channel's queue: end the call through the API, then the flow."""
        answer = ""
        with contextlib.suppress(EslError):
            answer = await kill(self.session, HANGUP_CAUSE)
        self.session.log.warning("ivr.esl.prompt_stuck", app=app, prompts=list(prompts), deadline_s=bound,
                                 kill_cause=HANGUP_CAUSE, answer=answer[:120])
        raise PromptStuck(f"{app} did not finish within {bound:g} s")

    async def hangup(self) -> None:
        """``hangup``, then ``uuid_kill`` when the call has not ended within the settle deadline."""
        with contextlib.suppress(EslError):
            await self.session.hangup(HANGUP_CAUSE)
            if not await wait_gone(self.session, self.settle_deadline):
                answer = await kill(self.session, HANGUP_CAUSE)
                self.session.log.warning("ivr.esl.hangup_forced", kill_cause=HANGUP_CAUSE, answer=answer[:120])


def read_call(session: OutboundSession) -> IvrCall:
    channel = session.channel

    def var(name: str) -> str:
        return (channel.variable(name) or "").strip()

    caller_id = (channel.caller_id_number or "").strip()
    if caller_id.lower() in {"anonymous", "unknown", "restricted", "private", "unavailable", "0000000000"}:
        caller_id = ""
    hidden = (channel.headers.get("Caller-Privacy-Hide-Number") or "").lower() in {"true", "yes", "1"}
    return IvrCall(
        tenant=var("dncgate_tenant") or None,
        caller_id=caller_id,
        withheld=hidden,
        call_id=channel.unique_id,
        door="esl",
        language=var("dncgate_language") or var("default_language") or None,
    )


def ivr_esl_handler(ctx: IvrContext, sounds_dir: str = EslSettings().sounds_dir,
                    prompt_deadline: float = PROMPT_DEADLINE_S, settle_deadline: float = SETTLE_DEADLINE_S) -> Handler:
    """The outbound-socket IVR handler."""

    async def handle(session: OutboundSession) -> None:
        call = read_call(session)
        language = language_of(call.language, ctx.tenants.get(call.tenant or ctx.default_tenant))
        await session.myevents()
        try:
            await session.execute("answer", wait=True)
        except EslConnectionClosed as exc:
            session.log.info("ivr.caller_gone_before_answer", error=str(exc))
            return
        await run_ivr(EslPort(session, language, sounds_dir, prompt_deadline, settle_deadline), call, ctx,
                      session.log)

    return handle


def with_esl_ivr(check: Handler, ivr: Handler) -> Handler:
    """One OutboundServer handler: ``dncgate_app=ivr`` sessions to the IVR, the rest to ``check``."""

    async def dispatch(session: OutboundSession) -> None:
        if (session.channel.variable(APP_VARIABLE) or "").strip().lower() == APP:
            await ivr(session)
        else:
            await check(session)

    return dispatch
