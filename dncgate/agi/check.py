"""The FastAGI / classic-AGI handler for ``/check``: one call in, channel variables out.

What it reads (query parameters first, then AGI arguments, then channel variables)::

    AGI(agi://127.0.0.1:4573/check?tenant=acme&purpose=marketing&category=finance,${EXTEN})

    number      agi_arg_1, else agi_extension
    tenant      ?tenant=   else channel variable DNCGATE_TENANT    else the default tenant
    purpose     ?purpose=  else DNCGATE_PURPOSE                    else the tenant's default
                (the channel variables are read only when the key is absent; a blank purpose
                means the tenant's default, a blank ?tenant= is a configuration fault decided
                ``unknown_tenant``: a dialplan variable came out empty, so the request cannot say
                whose call it is)
    category    ?category=
    account     ?account=  else agi_accountcode
    trunk       ?trunk=
    entity      ?entity=   (the business consent is keyed by)
    language    ?language= else agi_language

Classic AGI (``dncgate-agi``) takes the same keys as ``key=value`` arguments after the number.
Channel variables cost a round trip each, so only tenant and purpose fall back to them; the
shipped dialplan passes everything in the query string.

What it sets, in one ``MSet``: DNCGATE_VERDICT (allow|reject), DNCGATE_REASON, DNCGATE_SIPCODE,
DNCGATE_ANNOUNCEMENT, DNCGATE_DECISION_ID. The dialplan allows only on an explicit ``allow``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from dncgate.agi.session import AgiSession
from dncgate.gate import CheckRequest, Gate
from dncgate.model import Originator

_PARAMS = ("tenant", "purpose", "category", "account", "trunk", "entity", "language")
# Read from the channel when the query string does not carry them.
_CHANNEL_FALLBACKS = {"tenant": "DNCGATE_TENANT", "purpose": "DNCGATE_PURPOSE"}
# Values MSet takes as they are: none of its separators (",", "="), no quoting needed.
_SAFE_VALUES = re.compile(r"[a-zA-Z0-9_\-/.:+]*")


def check_handler(gate: Gate, door: str = "agi") -> Callable[[AgiSession], Awaitable[None]]:
    """A session handler bound to ``gate``."""

    async def handle(session: AgiSession) -> None:
        request = session.request
        if request.script.rstrip("/") not in {"/check", ""} and request.network:
            session.log.warning("agi.check.unknown_script", script=request.script)
            return  # no variables set: the dialplan treats that as a failed check
        check = await _check_request(session, door)
        result = await gate.check(check, session.log, defer=session.after_close)
        decision = result.decision
        await set_variables(
            session,
            {
                "DNCGATE_VERDICT": decision.verdict.value,
                "DNCGATE_REASON": decision.reason.value,
                "DNCGATE_SIPCODE": str(decision.sip_code or ""),
                "DNCGATE_ANNOUNCEMENT": decision.announcement or "",
                "DNCGATE_DECISION_ID": result.decision_id,
            },
        )

    return handle


async def _check_request(session: AgiSession, door: str) -> CheckRequest:
    request = session.request
    # Classic AGI has no query string: ``AGI(dncgate-agi,NUMBER,tenant=acme,purpose=marketing)``.
    params = dict(arg.split("=", 1) for arg in request.args[1:] if "=" in arg) | request.params
    values = {key: params.get(key, "") for key in _PARAMS}
    for key, variable in _CHANNEL_FALLBACKS.items():
        # Only when the request does not name the key at all: a blank ?purpose= (a dialplan
        # variable that came out empty) means "the tenant's default", never "whatever the
        # channel says", which a caller or an inherited variable may have set.
        if key not in params:
            values[key] = await session.get_variable(variable) or ""
    number = request.args[0] if request.args and request.args[0] else request.get("extension", "") or ""
    return CheckRequest(
        dialled=number,
        door=door,
        tenant=values["tenant"] if "tenant" in params else values["tenant"] or None,
        purpose=values["purpose"] or None,
        category=values["category"] or None,
        originator=Originator(
            account=values["account"] or request.get("accountcode", "") or "",
            trunk=values["trunk"],
            caller_id=request.get("callerid", "") or "",
            entity=values["entity"],
        ),
        language=values["language"] or request.get("language", "") or None,
    )


async def set_variables(session: AgiSession, variables: dict[str, str]) -> None:
    """Set several channel variables in one round trip (MSet) when every value is plain."""
    if _SAFE_VALUES.fullmatch("".join(variables.values())):
        await session.exec("MSet", ",".join(f"{name}={value}" for name, value in variables.items()))
        return
    for name, value in variables.items():
        await session.set_variable(name, value)
