"""FreeSWITCH messages: the chatplan (mod_sms) hands each SIP MESSAGE to the gate over the event socket.

``dialplan/freeswitch/dncgate_chatplan.xml`` marks the message (``dncgate_check=true``) and fires it
as an event (mod_sms's ``fire``). FreeSWITCH delivers nothing itself only if the extension ends with
mod_sms's ``final``; after ``stop`` the core still delivers the message (recorded on 1.11.1:
tests/fixtures/esl_chat/README.md). The gate, connected to
the inbound event socket (8021) and subscribed to ``MESSAGE`` events, checks each marked one like
any message (door ``sip-message``) and sends what is to be delivered back with ``sendevent CUSTOM
SMS::SEND_MESSAGE`` (mod_sms relays it to sofia: ``dest_proto sip``, ``skip_global_process``, so it
is not run through the chatplan again): the message itself when allowed, else the tenant's notice
to the sender when there is one. A refused message is not forwarded; nor is one the gate could not
read (logged). The connection reconnects with the shared backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from dncgate.backoff import Backoff
from dncgate.errors import MessageError
from dncgate.esl.errors import EslError
from dncgate.esl.inbound import InboundClient
from dncgate.esl.messages import Event
from dncgate.messages.model import Message, MessageOutcome
from dncgate.messages.retry import OptOutRetries
from dncgate.messages.service import MessageService
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.messages.chatplan")
CHECK_MARK = "dncgate_check"  # set by the shipped chatplan on the messages it hands over
SEND_MESSAGE = "SMS::SEND_MESSAGE"
# FreeSWITCH fires each message twice: the chatplan's ``fire``, then the core's copy after its own
# delivery step (switch_loadable_module.c do_chat_send), with every header of the first, the mark
# included, plus one of these (tests/fixtures/esl_chat/). The copy is not a second message.
AFTER_DELIVERY_HEADERS = ("Nonblocking-Delivery", "Delivery-Failure")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for FreeSWITCH to send (through mod_sms's SMS::SEND_MESSAGE)."""

    sender: str  # user@host, as the MESSAGE event's from
    recipient: str
    body: str
    content_type: str = "text/plain"

    def headers(self, profile: str) -> list[tuple[str, str]]:
        return [("Event-Subclass", SEND_MESSAGE), ("proto", "sip"), ("dest_proto", "sip"), ("from", self.sender),
                ("from_full", f"sip:{self.sender}"), ("to", self.recipient), ("sip_profile", profile),
                ("type", self.content_type), ("skip_global_process", "true"), ("blocking", "true")]


class ChatplanDoor:
    def __init__(self, service: MessageService, *, tenant: str | None = None,
                 retries: OptOutRetries | None = None) -> None:
        self.service, self.tenant = service, tenant
        self.retries = retries or OptOutRetries(service)

    async def decide(self, event: Event) -> tuple[MessageOutcome | None, list[Delivery]]:
        """What to send for one event: the message, the notice, or nothing (not ours, refused, bad)."""
        if event.name != "MESSAGE" or event.get(CHECK_MARK) != "true" or _after_delivery(event):
            return None, []
        sender, recipient = event.get("from") or "", event.get("to") or ""
        message = Message(
            sender=event.get("from_user") or sender, recipient=event.get("to_user") or recipient,
            body=event.body or "", door="sip-message", tenant=event.get("dncgate_tenant") or self.tenant,
            purpose=event.get("dncgate_purpose") or None, category=event.get("dncgate_category") or None,
            message_id=_message_id(event),
        )
        try:
            outcome = await self.service.handle(message, log)
        except MessageError as exc:
            log.warning("messages.chatplan.bad_message", error=str(exc), sender=sender[:64], recipient=recipient[:64])
            return None, []
        except StoreError as exc:  # a reply's opt-out not recorded: kept and retried; the reply is forwarded
            log.error("messages.chatplan.opt_out_unrecorded", error=str(exc), sender=sender[:64], body=message.body)
            self.retries.keep(replace(message, received_at=self.service.now()))
            return None, [Delivery(sender, recipient, message.body, event.get("type") or "text/plain")]
        if outcome.deliver:
            return outcome, [Delivery(sender, recipient, message.body, event.get("type") or "text/plain")]
        if outcome.notice:
            return outcome, [Delivery(recipient, sender, outcome.notice)]
        return outcome, []


def _message_id(event: Event) -> str:
    """The switch's id of the message: a fired MESSAGE has no Event-UUID (and no SIP Call-ID), but
    Core-UUID and Event-Sequence name it in that FreeSWITCH's run."""
    core, sequence = event.get("Core-UUID"), event.get("Event-Sequence")
    return f"{core}/{sequence}" if core and sequence else ""


def _after_delivery(event: Event) -> bool:
    return any(event.get(name) is not None for name in AFTER_DELIVERY_HEADERS)


async def run_chatplan(
    door: ChatplanDoor, connect: Callable[[], InboundClient], stop: asyncio.Event, *,
    backoff: Backoff | None = None,
) -> None:
    """Until ``stop``: connect, take MESSAGE events, send what they yield; reconnect on loss."""
    retrying = asyncio.create_task(door.retries.run(stop))
    try:
        await _connected(door, connect, stop, backoff or Backoff())
    finally:
        retrying.cancel()
        await asyncio.gather(retrying, return_exceptions=True)


async def _connected(door: ChatplanDoor, connect: Callable[[], InboundClient], stop: asyncio.Event,
                     policy: Backoff) -> None:
    failures = 0
    while not stop.is_set():
        client = connect()
        try:
            await client.connect()
            failures = 0
            log.info("messages.chatplan.connected")
            async for event in client.events():
                _, deliveries = await door.decide(event)
                for delivery in deliveries:
                    await client.sendevent("CUSTOM", delivery.headers(event.get("sip_profile") or "internal"),
                                           delivery.body)
        except EslError as exc:
            log.warning("messages.chatplan.connection_lost", error=str(exc), error_type=type(exc).__name__)
        finally:
            await client.close()
        failures += 1
        delay = policy.delay(failures - 1)
        try:
            async with asyncio.timeout(delay):
                await stop.wait()
        except TimeoutError:
            continue
