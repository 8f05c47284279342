"""A call enforcement blocked is answered ATIS-1000099 "603+": ``respond 603 Network Blocked`` with a
Reason header naming the cause, the blocking network and the redress contact; another account's
call to the same number goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_freeswitch import with_destination, with_variables
from test_check import ALLOW_REPLY, CLEAR, REJECT_REPLY, Lab, _lab, guard, one

from dncgate.model import AnalyticsBlock, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore
from tests.enforcement.standing import write_standing

BLOCK = AnalyticsBlock(603, "Network Blocked", "carrier-x", "tel:+18005550100")
TENANTS = {"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"), analytics_block=BLOCK)}


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    path = tmp_path / "esl.sqlite3"
    await write_standing(path, "default", "account:blasts", "s")
    async for value in _lab(tmp_path, SqliteListStore(path)):
        value.gate.tenants = TENANTS
        yield value


def _variables(arg: str) -> dict[str, str]:
    assert arg.startswith("^^|")  # the Reason header has spaces: FreeSWITCH's custom delimiter
    return dict(pair.split("=", 1) for pair in arg[3:].split("|"))


async def test_a_suspended_account_gets_603_network_blocked_with_the_reason_header(lab: Lab) -> None:
    reply = with_variables(with_destination(REJECT_REPLY, "8" + CLEAR), dncgate_account="blasts")
    trace, logs = await lab.call(reply)
    (command,) = [c for c in trace.commands if c.app == "multiset"]
    assert command.arg is not None
    variables = _variables(command.arg)
    assert variables["dncgate_reason"] == "originator_suspended"
    assert variables["dncgate_sip_code"] == "603"
    assert variables["sip_reason"] == \
        'SIP;cause=603;text="Network Blocked";location="carrier-x";redress="tel:+18005550100"'
    assert trace.shorts()[-1] == "execute respond 603 Network Blocked"
    assert guard("execute respond 603 Network Blocked") in trace.shorts()  # the switch-side bound still set
    assert one(logs, "esl.check.rejected")["respond"] == "603 Network Blocked"


async def test_another_account_to_the_same_number_goes_through(lab: Lab) -> None:
    reply = with_variables(with_destination(ALLOW_REPLY, "8" + CLEAR), dncgate_account="people")
    trace, logs = await lab.call(reply)
    assert any(s.startswith("execute transfer") for s in trace.shorts())
    assert one(logs, "esl.check.allowed")["reason"] == "allowed_clear"
