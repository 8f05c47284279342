"""The message check: the call path's rules with the sender port as the originator, the port
registry's two reasons, the misuse alert, the audit's door, and bad messages refused clearly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dncgate.errors import MessageError
from dncgate.gate import CheckRequest
from dncgate.messages.model import Direction, Message
from dncgate.model import Originator, Reason, Verdict
from tests.messages.conftest import (
    CLEAR,
    CONSENTED,
    LISTED,
    LOG,
    MARKETING_PORT,
    SERVICE_PORT,
    UNKNOWN_PORT,
    Lab,
)


def _verdict(outcome: object) -> tuple[str, str]:
    check = getattr(outcome, "check", None)
    assert check is not None
    return check.decision.verdict.value, check.decision.reason.value


async def test_a_listed_recipient_refuses_a_marketing_message_and_a_consented_one_gets_it(lab: Lab) -> None:
    refused = await lab.send(MARKETING_PORT, LISTED, category="finance")
    delivered = await lab.send(MARKETING_PORT, CONSENTED, category="finance")
    assert (_verdict(refused), refused.deliver) == (("reject", "national_dnc"), False)
    assert (_verdict(delivered), delivered.deliver) == (("allow", "allowed_consent"), True)
    assert refused.notice.startswith("Not delivered")
    assert delivered.notice == ""


async def test_each_message_has_an_audit_record_with_its_door_port_and_entity(lab: Lab) -> None:
    await lab.send(MARKETING_PORT, LISTED, door="sip-message")
    await lab.send(f"sip:{MARKETING_PORT}@127.0.0.1", f"sip:{CONSENTED}@127.0.0.1", door="api", category="finance")
    records = await lab.audit_records()
    assert [(r.door, r.caller_id, r.entity, r.callee, r.reason) for r in records] == [
        ("sip-message", MARKETING_PORT, "bank-1", LISTED, "national_dnc"),
        ("api", MARKETING_PORT, "bank-1", CONSENTED, "allowed_consent"),
    ]
    assert records[1].dialled == f"sip:{CONSENTED}@127.0.0.1"  # raw, as the switch handed it over


@pytest.mark.parametrize("recipient", [
    LISTED, "13800138000", "+86 138-0013-8000", "008613800138000", "sip:+8613800138000@10.0.0.1;user=phone",
    "<sip:13800138000@gw>", "tel:+86-138-0013-8000", '"Zhang" <sip:+8613800138000@gw>;tag=a1',
    "pjsip:+8613800138000@127.0.0.1",  # Asterisk's MESSAGE(to) of a PJSIP message
])
async def test_a_recipient_in_any_dialled_form_is_the_same_subscriber(lab: Lab, recipient: str) -> None:
    outcome = await lab.send(f'"Bank" <sip:{MARKETING_PORT}@127.0.0.1:5061>;tag=9', recipient)
    assert _verdict(outcome) == ("reject", "national_dnc")
    assert outcome.check is not None
    assert outcome.check.record.callee == LISTED


async def test_an_invalid_recipient_is_refused_for_marketing_as_invalid_number(lab: Lab) -> None:
    assert _verdict(await lab.send(MARKETING_PORT, "1380013")) == ("reject", "invalid_number")


async def test_an_unknown_sender_port_refuses_marketing_and_lets_service_through(lab: Lab) -> None:
    assert _verdict(await lab.send(UNKNOWN_PORT, CLEAR, purpose="marketing")) == ("reject", "unknown_sender_port")
    # the tenant's default purpose (marketing) for a port that says nothing
    assert _verdict(await lab.send(UNKNOWN_PORT, CLEAR)) == ("reject", "unknown_sender_port")
    # service follows service_on_failure (allow): never blocked without cause
    assert _verdict(await lab.send(UNKNOWN_PORT, CLEAR, purpose="service")) == ("allow", "unknown_sender_port")


async def test_a_service_port_sends_service_messages_to_anyone(lab: Lab) -> None:
    # the port's registration is the purpose when the message names none: listed or not, delivered
    assert _verdict(await lab.send(SERVICE_PORT, LISTED, "Your code is 123456")) == ("allow", "allowed_service")
    assert lab.alerts == []


async def test_a_service_port_sending_marketing_is_refused_and_raises_one_alert_per_window(lab: Lab) -> None:
    first = await lab.send(SERVICE_PORT, CLEAR, "50% off!", purpose="marketing")
    second = await lab.send(SERVICE_PORT, CONSENTED, "50% off!", category="finance")  # a category is marketing
    assert (_verdict(first), _verdict(second)) == (("reject", "service_port_misuse"),) * 2
    await lab.service.misuse.drain()
    assert len(lab.alerts) == 1
    alert = lab.alerts[0]
    assert (alert.rule, alert.originator.kind.value, alert.originator.value, alert.figures) == (
        "service_port_misuse", "caller_id", SERVICE_PORT, {"marketing_messages": 1.0})
    assert first.check is not None
    assert alert.sample_decisions == (first.check.decision_id,)
    lab.clock.advance(timedelta(hours=1))
    third = await lab.send(SERVICE_PORT, CLEAR, "50% off!", purpose="marketing")
    await lab.service.misuse.drain()
    assert len(lab.alerts) == 2
    assert lab.alerts[1].figures == {"marketing_messages": 2.0}  # the second message and the third
    assert second.check is not None
    assert third.check is not None
    assert lab.alerts[1].sample_decisions == (second.check.decision_id, third.check.decision_id)


FULL_WIDTH_TD = "\uff34\uff24"


@pytest.mark.parametrize("body", [
    "STOP", " stop ", "Stop.", "TD", "td", "退订", "退订。", FULL_WIDTH_TD, "unsubscribe",
])
async def test_an_opt_out_reply_withdraws_consent_for_the_next_message_and_the_next_call(lab: Lab, body: str) -> None:
    assert _verdict(await lab.send(MARKETING_PORT, CONSENTED, category="finance")) == ("allow", "allowed_consent")
    reply = await lab.service.handle(Message(CONSENTED, MARKETING_PORT, body, "sip-message", tenant="acme",
                                             message_id="call-id-7@host"), LOG)
    assert reply.direction is Direction.REPLY
    assert reply.opt_out is not None
    event = reply.opt_out
    assert (event.action.value, event.entity, event.callee) == ("revoke", "bank-1", CONSENTED)
    assert event.evidence is not None
    assert (event.evidence.channel.value, event.evidence.source, event.evidence.shown) == ("sms", CONSENTED, body)
    assert "call-id-7@host" in event.detail
    assert _verdict(await lab.send(MARKETING_PORT, CONSENTED, category="finance")) == ("reject", "consent_revoked")
    call = await lab.gate.check(CheckRequest(CONSENTED, "agi", tenant="acme", purpose="marketing", category="finance",
                                             originator=Originator(entity="bank-1")), LOG)
    assert (call.decision.verdict, call.decision.reason) == (Verdict.REJECT, Reason.CONSENT_REVOKED)


@pytest.mark.parametrize("body", ["stop by the shop tomorrow", "Thanks", "", "STOPP"])
async def test_a_reply_that_is_not_a_keyword_records_nothing(lab: Lab, body: str) -> None:
    reply = await lab.service.handle(Message(CONSENTED, MARKETING_PORT, body, "smpp", tenant="acme"), LOG)
    assert (reply.direction, reply.opt_out, reply.deliver) == (Direction.REPLY, None, True)
    assert _verdict(await lab.send(MARKETING_PORT, CONSENTED, category="finance")) == ("allow", "allowed_consent")


@pytest.mark.parametrize(("message", "error"), [
    (Message(MARKETING_PORT, "", "hi", "sip-message"), "recipient: required"),
    (Message("", LISTED, "hi", "sip-message"), "sender: required"),
    (Message(MARKETING_PORT, LISTED, "x" * 4097, "sip-message"), "body: 4097 characters, at most 4096"),
    (Message(MARKETING_PORT, LISTED, b"hi", "sip-message"), "body: expected text"),  # type: ignore[arg-type]
    (Message(MARKETING_PORT, LISTED, "hi", "sip-message", purpose="spam"), "purpose: one of marketing, service"),
    (Message(MARKETING_PORT, LISTED, "hi", "sip-message", category="guns"), "category: one of finance"),
    (Message("bad@@port", LISTED, "hi", "sip-message"), "sender: 'bad@@port' is not a sender number"),
    (Message(MARKETING_PORT, "1" * 300, "hi", "sip-message"), "recipient: at most 256 characters"),
    (Message(MARKETING_PORT, LISTED, "hi", "fax"), "door: one of api, sip-message, smpp"),
])
async def test_a_malformed_message_is_refused_with_what_is_wrong(lab: Lab, message: Message, error: str) -> None:
    with pytest.raises(MessageError, match="^" + error.replace("(", r"\(").replace(".", r"\.")):
        await lab.service.handle(message, LOG)
    assert await lab.audit_records() == []  # nothing was decided


async def test_an_unknown_tenant_fails_closed_for_marketing(lab: Lab) -> None:
    outcome = await lab.service.handle(Message(MARKETING_PORT, CLEAR, "hi", "smpp", tenant="nobody"), LOG)
    assert _verdict(outcome) == ("reject", "unknown_tenant")


async def test_a_marketing_port_stating_service_is_still_checked_as_marketing(lab: Lab) -> None:
    # the port's registration bounds its purpose: stating "service" does not skip the lists
    outcome = await lab.send(MARKETING_PORT, LISTED, "Loans at 3.1%", purpose="service")
    assert _verdict(outcome) == ("reject", "national_dnc")
    assert outcome.check is not None
    assert outcome.check.record.purpose == "marketing"
