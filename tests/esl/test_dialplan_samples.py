"""The shipped FreeSWITCH samples (dialplan/freeswitch/) hold together and match the gate's bounds.

Parsed as XML; the bounds come from the code (EslSettings' defaults, the IVR's call deadline),
never from a copy.  The park test plays what a real FreeSWITCH 1.11.1 did with a socket closed
before ``connect`` (real-switch-facts.md): the call stays parked unless park_timeout ends it.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_freeswitch import PARKED, FakeFreeSwitch, connect_reply

from dncgate.esl.check import reject_deadline, reject_guard_delay
from dncgate.settings import EslSettings, IvrSettings

SAMPLES = Path(__file__).resolve().parents[2] / "dialplan" / "freeswitch"


def parse(name: str) -> ET.Element:
    return ET.parse(SAMPLES / name).getroot()  # noqa: S314 - the project's own sample files


def extensions(name: str) -> Iterator[ET.Element]:
    yield from parse(name).iter("extension")


def actions(extension: ET.Element) -> list[tuple[str, str]]:
    return [(a.get("application", ""), a.get("data", "")) for a in extension.iter("action")]


def park_timeouts(name: str) -> list[tuple[int, str]]:
    """For every extension that runs ``socket``: the park_timeout set before it (N, cause)."""
    found = []
    for extension in extensions(name):
        steps = actions(extension)
        sockets = [i for i, (app, _) in enumerate(steps) if app == "socket"]
        for at in sockets:
            before = [data for app, data in steps[:at] if app == "set" and data.startswith("park_timeout=")]
            assert before, f"{name}: extension {extension.get('name')} runs socket without park_timeout"
            seconds, _, cause = before[-1].removeprefix("park_timeout=").partition(":")
            found.append((int(seconds), cause))
    return found


def test_dialer_profile_has_a_media_timer() -> None:
    params = {p.get("name"): p.get("value") for p in parse("sip_profile_dialer.xml").iter("param")}
    assert params["rtp-timer-name"] == "soft"  # without it a silent caller blocks the announcement
    assert params["context"] == "dncgate_outbound"


def test_check_park_timeout_outlasts_the_gates_reject() -> None:
    defaults = EslSettings()
    bounds = park_timeouts("dncgate.xml")
    assert len(bounds) == 2  # the fail-closed check and the service fail-open
    for seconds, cause in bounds:
        assert cause == "CALL_REJECTED"  # 603 with the Q.850 cause 21 Reason (seen on a real switch)
        assert seconds > defaults.playback_deadline + defaults.settle_deadline
        assert seconds > reject_deadline(defaults)  # never cuts the gate's own reject (its code)
        assert seconds > reject_guard_delay(defaults)  # nor the gate's sched_hangup guard


def test_ivr_park_timeout_outlasts_the_ivr_call() -> None:
    ((seconds, cause),) = park_timeouts("dncgate_ivr.xml")
    assert seconds > IvrSettings().call_deadline
    assert cause == "NORMAL_CLEARING"


def test_every_gateway_the_dialplan_bridges_to_is_shipped() -> None:
    shipped = {g.get("name") for g in parse("gateway_carrier.xml").iter("gateway")}
    used = {m.group(1) for path in SAMPLES.glob("*.xml")
            for m in re.finditer(r"sofia/gateway/([A-Za-z0-9_.-]+)/", path.read_text())}
    assert used == {"carrier"}
    assert used <= shipped


def test_every_acl_the_profile_applies_is_shipped() -> None:
    root = parse("acl_dialers.xml")
    lists = {element.get("name") for element in root.iter("list")}  # iter() includes the root <list>
    params = {p.get("name"): p.get("value") for p in parse("sip_profile_dialer.xml").iter("param")}
    applied = {params[key] for key in ("apply-inbound-acl", "apply-register-acl", "apply-proxy-acl") if key in params}
    assert applied == {"dialers"}
    assert applied <= lists
    nodes = list(root.iter("node"))
    assert nodes
    assert all(n.get("type") == "allow" and n.get("cidr") for n in nodes)
    assert root.get("default") == "deny"


def test_readme_says_where_each_sample_goes() -> None:
    readme = (SAMPLES / "README.md").read_text()
    for sample in SAMPLES.glob("*.xml"):
        assert f"`{sample.name}`" in readme, f"README.md does not list {sample.name}"
    for where in ("conf/sip_profiles/external/carrier.xml", "acl.conf.xml", "conf/sip_profiles/dialer.xml"):
        assert where in readme


# --- a socket closed before connect parks (recorded) --------------------------------------------


async def _accept_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()  # a peer that accepts and closes at once, or a frozen gate that then dies


@pytest.mark.parametrize("park_timeout", [None, "shipped"])
async def test_socket_closed_before_connect(park_timeout: str | None) -> None:
    (seconds, cause), _ = park_timeouts("dncgate.xml")
    server = await asyncio.start_server(_accept_and_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    setting = f"{seconds}:{cause}" if park_timeout else None
    try:
        trace = await FakeFreeSwitch(connect_reply("outbound_2_85550001"), park_timeout=setting).call(port)
    finally:
        server.close()
        await server.wait_closed()
    assert trace.commands == []
    if park_timeout is None:
        assert (trace.outcome, trace.sip_code) == (PARKED, None)  # nothing after socket runs, forever
    else:
        assert (trace.outcome, trace.sip_code) == ("park_timeout CALL_REJECTED", 603)
