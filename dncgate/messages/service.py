"""``MessageService``: one message in, deliver or not out; every door of messages goes through it.

An outbound message is a ``CheckRequest`` on the one ``Gate.check``: the recipient as the callee,
the sender port (from the registry) as the originator's caller ID and its entity as the entity, the
port itself as ``sender`` (the port rules of ``decide()``), and the door's name (``sip-message``,
``smpp``) in the audit. A message to a registered port is a reply: when it is an opt-out keyword,
the port entity's consent is withdrawn in the ledger with the message as evidence (``revoke``: the
next message and the next call from that entity get ``consent_revoked``). A reply is not decided,
so it has no audit record; its ledger record is its evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from dncgate.consent.ledger import Ledger
from dncgate.consent.model import MAX_TEXT, Action, Channel, Evidence, LedgerEvent
from dncgate.errors import MessageError
from dncgate.gate import CheckRequest, Gate
from dncgate.messages.misuse import MisuseAlerts, OnAlert
from dncgate.messages.model import Direction, Message, MessageOutcome
from dncgate.messages.ports import PortRegistry
from dncgate.model import Originator, PortUse, Purpose, Reason, SenderPort, TenantPolicy, Verdict
from dncgate.numbers import Subscriber, normalise
from dncgate.settings.messages import MessagesSettings
from dncgate.store.errors import StoreError

Logger = structlog.typing.FilteringBoundLogger
LEDGER_DEADLINE = 2.0  # an opt-out's ledger write
_PURPOSES = {p.value for p in Purpose}


class MessageService:
    def __init__(
        self, gate: Gate, ledger: Ledger, registry: PortRegistry, *, settings: MessagesSettings,
        on_alert: OnAlert | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ledger_deadline: float = LEDGER_DEADLINE,
    ) -> None:
        self.gate, self.ledger, self.registry = gate, ledger, registry
        self.max_body_chars = settings.max_body_chars
        self.misuse = MisuseAlerts(on_alert, timedelta(seconds=settings.misuse_alert_interval))
        self._clock = clock
        self.ledger_deadline = ledger_deadline

    @classmethod
    def of(cls, gate: Gate, ledger: Ledger, settings: MessagesSettings, *, on_alert: OnAlert | None = None,
           clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> MessageService:
        return cls(gate, ledger, PortRegistry.of(settings, gate.tenants), settings=settings, on_alert=on_alert,
                   clock=clock)

    def now(self) -> datetime:
        return self._clock()

    async def handle(self, message: Message, log: Logger) -> MessageOutcome:
        """Check one message. ``MessageError``: the message is malformed (nothing was decided or
        recorded); ``StoreError``: an opt-out could not be recorded (the door must not acknowledge
        the reply, so that it is sent again)."""
        message = message.checked(self.max_body_chars)
        tenant_name = message.tenant or self.gate.default_tenant
        tenant = self.gate.tenants.get(tenant_name)
        if tenant is not None:
            port = self.registry.registered(tenant_name, message.recipient)
            if port is not None:
                return await self._reply(tenant, port, message, log)
        return await self._outbound(tenant_name, tenant, message, log)

    async def handle_reply(self, message: Message, log: Logger) -> MessageOutcome | None:
        """A message coming back from the network (an SMSC's deliver_sm): only a reply to a
        registered port is read (for an opt-out); anything else is not the gate's (None)."""
        message = message.checked(self.max_body_chars)
        tenant = self.gate.tenants.get(message.tenant or self.gate.default_tenant)
        port = self.registry.registered(tenant.name, message.recipient) if tenant is not None else None
        if tenant is None or port is None:
            return None
        return await self._reply(tenant, port, message, log)

    async def _outbound(self, tenant_name: str, tenant: TenantPolicy | None, message: Message,
                        log: Logger) -> MessageOutcome:
        found = self.registry.port(tenant_name, message.sender) if tenant is not None else None
        if tenant is not None and found is None:
            raise MessageError(f"sender: {message.sender[:64]!r} is not a sender number, short code or sender id")
        # an unknown tenant: the gate decides it (unknown_tenant, the built-in failure defaults)
        port = found or SenderPort(message.sender.strip()[:64])
        purpose = _purpose(message, port, tenant)
        if port.registered_for is not None and not self.registry.may_send(tenant_name, port, message.account,
                                                                          message.door):
            # a registered port claimed by an account not bound to it: unknown to that account, refused
            log.warning("messages.port_not_bound", tenant=tenant_name, port=port.number, account=message.account,
                        door=message.door)
            port, purpose = SenderPort(port.number), Purpose.MARKETING.value
        category = _category(message.category or port.category or None, self.ledger.config.categories)
        request = CheckRequest(
            dialled=message.recipient, door=message.door, tenant=tenant_name, purpose=purpose, category=category,
            originator=Originator(account=message.account[:64], caller_id=port.number, entity=port.entity),
            sender=port if tenant is not None else None,
        )
        result = await self.gate.check(request, log)
        decision = result.decision
        if decision.reason is Reason.SERVICE_PORT_MISUSE and decision.outcome is Verdict.REJECT:
            self.misuse.note(tenant_name, port, result.decision_id, result.attempt.at)
        notice = ""
        if decision.verdict is Verdict.REJECT:
            notice = self.registry.of_tenant(tenant_name).notice
        return MessageOutcome(Direction.OUTBOUND, port, check=result, notice=notice)

    async def _reply(self, tenant: TenantPolicy, port: SenderPort, message: Message, log: Logger) -> MessageOutcome:
        subscriber = normalise(message.sender, tenant.dial_plan)
        opting_out = self.registry.is_opt_out(tenant.name, message.body)
        if not opting_out or not isinstance(subscriber, Subscriber) or not port.entity:
            log.info("messages.reply", tenant=tenant.name, port=port.number, opt_out=False,
                     keyword=opting_out, subscriber=subscriber.e164 if isinstance(subscriber, Subscriber) else "")
            return MessageOutcome(Direction.REPLY, port)
        detail = f"opt-out reply to {port.number}" + (f", message {message.message_id[:128]}"
                                                      if message.message_id else "")
        event = LedgerEvent(
            tenant=tenant.name, action=Action.REVOKE, callee=subscriber.e164, entity=port.entity,
            evidence=Evidence(channel=Channel.SMS, captured_at=message.received_at or self._clock(),
                              source=subscriber.e164, shown=message.body[:MAX_TEXT],
                              captured_by=f"{message.door}:{port.number}"),
            detail=detail,
        )
        try:
            async with asyncio.timeout(self.ledger_deadline):
                sealed = await self.ledger.append(event)
        except TimeoutError:
            raise StoreError(f"the ledger did not record the opt-out within {self.ledger_deadline} s") from None
        log.info("messages.opted_out", tenant=tenant.name, port=port.number, entity=port.entity,
                 subscriber=subscriber.e164, record_id=sealed.id, door=message.door)
        return MessageOutcome(Direction.REPLY, port, opt_out=sealed)


def _purpose(message: Message, port: SenderPort, tenant: TenantPolicy | None) -> str | None:
    """A marketing port's messages are marketing, whatever they state; else the message's own
    purpose (a service port stating marketing is misuse); else marketing when it names a category;
    else what its port is registered for; else (None) the tenant's default."""
    stated = message.purpose.strip().lower() if message.purpose else ""
    if stated and stated not in _PURPOSES:
        raise MessageError(f"purpose: one of {', '.join(sorted(_PURPOSES))}")
    if port.registered_for is PortUse.MARKETING:
        return Purpose.MARKETING.value
    if stated:
        return stated
    if message.category:
        return Purpose.MARKETING.value  # a category is a marketing one (the port's own applies to marketing only)
    if port.registered_for is not None:
        return port.registered_for.value
    return tenant.default_purpose.value if tenant is not None else None


def _category(category: str | None, known: tuple[str, ...]) -> str | None:
    if not category:
        return None
    if category not in known:
        raise MessageError(f"category: one of {', '.join(known)}")
    return category
