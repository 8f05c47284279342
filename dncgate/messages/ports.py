"""The sender-port registry: each tenant's sender numbers and short codes, what each is registered
for (service or marketing) and the entity behind it, from ``[messages.tenants.NAME.ports]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dncgate.model import SenderPort, TenantPolicy
from dncgate.settings.messages import DEFAULT_OPT_OUT_KEYWORDS, MessagesSettings, keyword_form, port_number


@dataclass(frozen=True, slots=True)
class TenantPorts:
    ports: Mapping[str, SenderPort]  # port_number() -> the port
    opt_out_keywords: frozenset[str]  # in keyword_form()
    notice: str = ""
    accounts: Mapping[str, frozenset[str]] = field(default_factory=dict)  # port_number() -> who may use it


class PortRegistry:
    """Which ports each tenant registered. Built once from the settings (read-only afterwards)."""

    def __init__(self, tenants: Mapping[str, TenantPorts], policies: Mapping[str, TenantPolicy]) -> None:
        self._tenants = tenants
        self._policies = policies
        self._none = TenantPorts({}, frozenset(keyword_form(k) for k in DEFAULT_OPT_OUT_KEYWORDS))

    @classmethod
    def of(cls, settings: MessagesSettings, policies: Mapping[str, TenantPolicy]) -> PortRegistry:
        tenants: dict[str, TenantPorts] = {}
        for name, table in settings.tenants.items():
            policy = policies.get(name)
            if policy is None:  # refused by the settings' checks; never reached from a loaded config
                continue
            ports: dict[str, SenderPort] = {}
            accounts: dict[str, frozenset[str]] = {}
            for raw, port in table.ports.items():
                number = port_number(raw, policy.dial_plan)
                if number is not None:
                    ports[number] = SenderPort(number, port.registered_for, port.entity, port.category)
                    accounts[number] = frozenset(port.accounts)
            keywords = frozenset(keyword_form(k) for k in table.opt_out_keywords) - {""}
            tenants[name] = TenantPorts(ports, keywords, table.notice, accounts)
        return cls(tenants, policies)

    def of_tenant(self, tenant: str) -> TenantPorts:
        return self._tenants.get(tenant, self._none)

    def port(self, tenant: str, raw: str) -> SenderPort | None:
        """The port ``raw`` names in ``tenant``'s registry: registered (its use and entity), or
        unregistered (``registered_for`` None); None when ``raw`` is no port at all."""
        policy = self._policies.get(tenant)
        if policy is None:
            return None
        number = port_number(raw, policy.dial_plan)
        if number is None:
            return None
        return self.of_tenant(tenant).ports.get(number) or SenderPort(number)

    def may_send(self, tenant: str, port: SenderPort, account: str, door: str) -> bool:
        """Whether ``account`` may send from the registered ``port``: one of its ``accounts``; with
        none listed, any account of the tenant except over SMPP (an ESME names its source_addr
        itself: it must be bound to the port)."""
        allowed = self.of_tenant(tenant).accounts.get(port.number, frozenset())
        if allowed:
            return account in allowed
        return door != "smpp"

    def registered(self, tenant: str, raw: str) -> SenderPort | None:
        """The registered port ``raw`` names, else None."""
        port = self.port(tenant, raw)
        return port if port is not None and port.registered_for is not None else None

    def is_opt_out(self, tenant: str, body: str) -> bool:
        """Whether a reply's body is one of the tenant's opt-out keywords (whole, see ``keyword_form``)."""
        return keyword_form(body) in self.of_tenant(tenant).opt_out_keywords

