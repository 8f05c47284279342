"""Reloading the configuration of a running ``dncgate serve`` (SIGHUP, ``systemctl reload``).

What changes live: the tenants (policies, dial plans, hours) and the API keys. Every holder of the
tenants (the gate, the list freshness, the IVR, the API) shares one :class:`LiveTenants`, whose
mapping is replaced whole, at once, between two awaits: a check, an IVR call or an API request
looks its tenant up once at its start, so whatever is in flight finishes on the policy it began
with and the next one uses the new. Prefix rules are no configuration (they live in the store,
``dncgate lists rule``) and apply at once without a reload.

What cannot change live (the listeners, the store, the audit, sync, the feeds, enforcement, the
IVR's bounds, ``[api] enabled``) is compared and reported as ``config.reload.needs_restart``,
never silently ignored. A file that does not load is refused (``config.reload.refused``, each
problem listed) and the running settings stay as they were.
"""

from __future__ import annotations

from collections import UserDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

import msgspec
import structlog

from dncgate.errors import ConfigError
from dncgate.model import TenantPolicy
from dncgate.numbers import warm_up
from dncgate.settings import Settings, load

log = structlog.get_logger("dncgate.reload")
_LIVE = frozenset({"tenants", "source", "path"})  # Settings fields a reload applies (or that only describe it)


class LiveTenants(UserDict[str, TenantPolicy]):
    """The configured tenants, replaceable whole while serve runs (``replace``); read as a Mapping."""

    def replace(self, tenants: Mapping[str, TenantPolicy]) -> None:
        self.data = dict(tenants)  # one assignment: a reader sees the old tenants or the new, never a mix


@dataclass(frozen=True, slots=True)
class Reloaded:
    """What one reload did: the settings now in force, and the tables that need a restart to apply."""

    settings: Settings
    applied: tuple[str, ...]  # "tenants", "api.keys": what changed and was applied
    needs_restart: tuple[str, ...]


def needs_restart(running: Settings, new: Settings) -> tuple[str, ...]:
    """The tables of ``new`` that differ from ``running`` and cannot change while serve runs."""
    changed = []
    for field in fields(Settings):
        if field.name in _LIVE:
            continue
        old_table, new_table = getattr(running, field.name), getattr(new, field.name)
        if field.name == "api":  # its keys apply live; [api] enabled does not
            old_table, new_table = (msgspec.structs.replace(t, keys={}) for t in (old_table, new_table))
        if old_table != new_table:
            changed.append(field.name)
    return tuple(changed)


def reload(running: Settings, tenants: LiveTenants, apply_keys: Callable[[Settings], None],
           *, environ: Mapping[str, str] | None = None,
           overrides: Callable[[Settings], Settings] | None = None) -> Reloaded | None:
    """Read ``running.path`` again and apply what can change live; None when the file is refused.

    ``apply_keys`` installs the new ``[api.keys]`` (the API's own context; a no-op without the API);
    ``overrides``: what serve's caller changed in the file's settings at start (``--demo``), applied again."""
    try:
        new = load(running.path, environ)
    except ConfigError as exc:
        log.error("config.reload.refused", file=_shown(running.path), problems=exc.problems,
                  kept=running.source)
        return None
    if overrides is not None:
        new = overrides(new)
    applied = []
    restart = needs_restart(running, new)
    if set(new.tenants) != set(tenants):  # what serve started per tenant name keeps the old names
        restart += tuple(f"{table} (its tenant names)" for table, started in (
            ("enforcement", running.enforcement.enabled), ("sync", running.sync.outbox is not None)) if started)
    if dict(new.tenants) != dict(tenants):
        tenants.replace(new.tenants)
        applied.append("tenants")
    if new.api.keys != running.api.keys:
        apply_keys(new)
        applied.append("api.keys")
    # the settings in force: the new tenants and keys, everything else as serve started with it
    in_force = replace(running, tenants=tenants, source=new.source,
                       api=msgspec.structs.replace(running.api, keys=new.api.keys))
    log.info("config.reloaded", file=_shown(running.path), source=new.source, applied=applied,
             tenants=sorted(new.tenants))
    if restart:
        log.warning("config.reload.needs_restart", tables=list(restart),
                    advice="these tables keep their running values until dncgate serve is restarted")
    return Reloaded(in_force, tuple(applied), restart)


class Reloader:
    """serve's SIGHUP: each call reloads the file and keeps what is in force for the next comparison."""

    def __init__(self, settings: Settings, tenants: LiveTenants, apply_keys: Callable[[Settings], None],
                 overrides: Callable[[Settings], Settings] | None = None) -> None:
        self.settings, self.tenants, self.apply_keys, self.overrides = settings, tenants, apply_keys, overrides
        self.reloads = self.refused = 0

    def __call__(self) -> Reloaded | None:
        result = reload(self.settings, self.tenants, self.apply_keys, overrides=self.overrides)
        if result is None:
            self.refused += 1
            return None
        self.reloads += 1
        self.settings = result.settings
        warm_up(tenant.dial_plan for tenant in self.tenants.values())
        return result


def _shown(path: Path | None) -> str:
    return str(path) if path is not None else "none (built-in defaults)"
