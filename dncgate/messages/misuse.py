"""A service port that sends marketing is an early-warning signal: one ``Alert`` per port per window.

The first refused ``service_port_misuse`` message of a window raises the alert at once (the
analyser's ``on_alert``: enforcement opens or adds to the port's case); the later ones in the
window are counted and carried by the next window's alert, so a campaign does not flood the case
log. Ports are registered ones only (an unregistered port cannot misuse a registration), so the
counters are bounded by the registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from dncgate.early_warning.alerts import Alert, service_port_misuse
from dncgate.model import SenderPort

log = structlog.get_logger("dncgate.messages")
OnAlert = Callable[[Alert], Awaitable[object]]
MAX_SAMPLES = 10  # decision ids an alert names


@dataclass
class _Window:
    started: datetime
    count: int = 0  # refused messages not yet reported in an alert
    samples: list[str] = field(default_factory=list)


class MisuseAlerts:
    def __init__(self, on_alert: OnAlert | None, interval: timedelta) -> None:
        self.on_alert = on_alert
        self.interval = interval
        self._windows: dict[tuple[str, str], _Window] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.raised = 0

    def note(self, tenant: str, port: SenderPort, decision_id: str, at: datetime) -> Alert | None:
        """Count one refused message; returns the alert when this one raised it."""
        key = (tenant, port.number)
        window = self._windows.get(key)
        if window is not None and at - window.started < self.interval:
            window.count += 1
            if len(window.samples) < MAX_SAMPLES:
                window.samples.append(decision_id)
            return None
        carried, samples = (window.count, window.samples) if window is not None else (0, [])
        self._windows[key] = _Window(at)
        alert = service_port_misuse(
            tenant, port.number, entity=port.entity, raised_at=at, window_started=at, window=_label(self.interval),
            messages=carried + 1, sample_decisions=(*samples, decision_id)[-MAX_SAMPLES:],
        )
        self.raised += 1
        log.warning("messages.service_port_misuse", **alert.as_dict())
        if self.on_alert is not None:
            task = asyncio.get_running_loop().create_task(_deliver(self.on_alert, alert))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return alert

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the alerts handed to ``on_alert``."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)


async def _deliver(on_alert: OnAlert, alert: Alert) -> None:
    try:
        await on_alert(alert)
    except Exception as exc:  # noqa: BLE001  # an enforcement fault must not reach the message's door
        log.error("messages.alert_failed", alert_id=alert.alert_id, error=f"{type(exc).__name__}: {exc}")


def _label(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
