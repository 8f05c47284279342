"""Ending a call the gate controls, even when the channel's own queue is stuck.

In ``async full`` mode every ``sendmsg`` (execute, hangup) is queued on the channel and run by the
channel's thread, one after the other.  A ``playback`` in early media on a SIP profile without a
media timer (``rtp-timer-name``) advances only when the caller sends RTP; a caller that sends none
blocks it, and a ``sendmsg hangup`` sent meanwhile gets its ``+OK`` and then waits behind the
playback until the caller gives up (seen on FreeSWITCH 1.11.1, ``real-switch-facts.md``).

``api`` commands do not queue: mod_event_socket runs them in the listener's own thread.  So a call
that must end goes through the API:

* ``uuid_kill <uuid> <cause>`` calls ``switch_channel_hangup(channel, cause)`` from that thread,
  the same call a ``sendmsg hangup <cause>`` makes from the channel's thread, so mod_sofia maps the
  cause to the same final response (CALL_REJECTED 603, UNWANTED 607) with the same ``sip_reason``;
  the hangup also signals the channel (SWITCH_SIG_KILL), which shuts down the media socket a
  blocked playback is reading from.
* ``uuid_break <uuid> all`` is not enough: it flushes the queue and sets CF_BREAK, which a playback
  blocked in a read never looks at (mod_commands ``break_function``, 1.11.1).
* ``sched_hangup +<s> <uuid> <cause>`` runs the same hangup from the core's scheduler thread: a bound
  on the switch's side that holds even when the gate is gone.
* A code no cause maps to (608) is carried by ``proto_specific_hangup_cause=sip:608``, which
  ``sofia_on_hangup`` uses instead of the cause's code (unless ``sip_ignore_remote_cause``).

The API path is read from the 1.11.1 sources, not yet seen on a real switch (the facts file
records the trap, not the fix).
"""

from __future__ import annotations

import asyncio
import math

from dncgate.esl import commands
from dncgate.esl.errors import EslConnectionClosed, EslError
from dncgate.esl.outbound import OutboundSession

__all__ = ["PROTO_CAUSE_VARIABLE", "kill", "schedule_hangup", "schedule_hangup_command", "wait_gone"]

PROTO_CAUSE_VARIABLE = "proto_specific_hangup_cause"
HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})


async def kill(session: OutboundSession, cause: str) -> str:
    """``api uuid_kill <uuid> <cause>``: hang the channel up now, whatever its queue holds.

    Returns FreeSWITCH's answer (``+OK`` or ``-ERR No such channel!`` when it is already gone).
    """
    return (await session.api(commands.api_command("uuid_kill", session.unique_id, cause))).strip()


async def schedule_hangup(session: OutboundSession, seconds: float, cause: str) -> str:
    """``api sched_hangup +<s> <uuid> <cause>`` (whole seconds, rounded up): the switch's own bound."""
    return (await session.api(schedule_hangup_command(session, seconds, cause))).strip()


def schedule_hangup_command(session: OutboundSession, seconds: float, cause: str) -> str:
    """The API command :func:`schedule_hangup` runs (for :meth:`OutboundSession.api_and_execute`)."""
    return commands.api_command("sched_hangup", f"+{max(1, math.ceil(seconds))}", session.unique_id, cause)


async def wait_gone(session: OutboundSession, deadline: float) -> bool:
    """True when the channel hung up (CHANNEL_HANGUP, the disconnect-notice or the socket closing)
    within ``deadline`` seconds; False when it is still there."""
    try:
        async with asyncio.timeout(deadline):
            while (event := await session.next_event()) is not None:
                if event.name in HANGUP_EVENTS:
                    return True
    except TimeoutError:
        return False
    except EslConnectionClosed:
        return True  # FreeSWITCH closes the socket of a call that ended
    except EslError:
        return False  # an idle-event deadline or a broken stream: not seen to end
    return True  # the disconnect-notice
