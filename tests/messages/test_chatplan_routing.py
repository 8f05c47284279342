"""The shipped FreeSWITCH chatplan's routing, read from the XML the way mod_sms hunts it: the first
extension whose conditions all match (each condition ``break="on-false"`` by default) runs, and
the chatplan stops there. Service ports, from their own host, are sent on by FreeSWITCH itself, so
a gate that is down holds back no service message; everything else goes to the gate and nothing
of it is delivered without one (fail-closed)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.messages.conftest import CONSENTED, MARKETING_PORT, SERVICE_PORT, UNKNOWN_PORT

CHATPLAN = Path(__file__).resolve().parents[2] / "dialplan" / "freeswitch" / "dncgate_chatplan.xml"
SERVICE_HOST = "10.0.0.7"  # the shipped example's service sender host


def hunt(headers: dict[str, str], context: str = "public") -> list[tuple[str, str]]:
    """The actions mod_sms's chatplan_hunt would run for a MESSAGE with ``headers``."""
    root = ET.parse(CHATPLAN).getroot()  # noqa: S314 - the project's own chatplan
    [xcontext] = [c for c in root.iter("context") if c.get("name") == context]
    for extension in xcontext.iter("extension"):
        assert extension.get("continue") in (None, "false")  # the first match is the only one
        actions: list[tuple[str, str]] = []
        for condition in extension.iter("condition"):
            assert condition.get("break") in (None, "on-false")
            field = headers.get(condition.get("field", ""), "")
            if not re.search(condition.get("expression", ""), field):
                break
            actions += [(a.get("application", ""), a.get("data", "")) for a in condition.iter("action")]
        else:
            return actions
    return []


def message(from_user: str, to_user: str, from_ip: str = "192.0.2.10") -> dict[str, str]:
    return {"from_user": from_user, "to_user": to_user, "from_sip_ip": from_ip, "context": "public"}


def test_the_example_ports_are_the_test_registrys() -> None:
    assert SERVICE_PORT == "95588"  # the chatplan's example lists the service port of tests/messages/conftest.py


def test_a_service_ports_message_from_its_host_is_sent_by_freeswitch_and_never_waits_for_the_gate() -> None:
    actions = hunt(message(SERVICE_PORT, CONSENTED, SERVICE_HOST))
    assert ("send", "sip") in actions
    assert actions[-1] == ("final", "")  # final_delivery: the core does not deliver it a second time
    assert not any(app == "fire" for app, _ in actions)  # not the gate's: delivered with the gate down


@pytest.mark.parametrize(("sender", "ip"), [
    (MARKETING_PORT, SERVICE_HOST),   # a marketing port, even from the service host
    (UNKNOWN_PORT, "192.0.2.10"),
    (SERVICE_PORT, "192.0.2.10"),     # a service port's number claimed from another host
    (SERVICE_PORT + "1", SERVICE_HOST),  # a longer number that starts with it
    (CONSENTED, SERVICE_HOST),        # a subscriber's reply (a STOP) from anywhere
])
def test_everything_else_goes_to_the_gate_and_is_not_delivered_without_it(sender: str, ip: str) -> None:
    actions = hunt(message(sender, SERVICE_PORT if sender == CONSENTED else CONSENTED, ip))
    assert ("set", "dncgate_check=true") in actions
    assert [app for app, _ in actions][-2:] == ["fire", "final"]
    assert not any(app in ("send", "reply") for app, _ in actions)  # only the gate delivers these
