"""``dncgate serve``: the store, the audit sink, the gate and every enabled door in one process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog
from aiohttp import web

from dncgate.agi import AgiLimits, AgiServer
from dncgate.agi.check import check_handler
from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.audit import AuditSink
from dncgate.config import GateConfig
from dncgate.consent.factory import open_ledger
from dncgate.esl import OutboundConfig, OutboundServer
from dncgate.esl.check import EslCheckSettings, esl_check_handler
from dncgate.gate import Gate
from dncgate.http import make_app
from dncgate.ivr.agi import ivr_agi_handler, with_ivr
from dncgate.ivr.esl import ivr_esl_handler, with_esl_ivr
from dncgate.ivr.runner import IvrContext
from dncgate.metrics import GateMetrics
from dncgate.numbers import warm_up
from dncgate.store.factory import open_store

log = structlog.get_logger("dncgate.service")
SHUTDOWN_GRACE = 5.0


@dataclass
class Running:
    """What a started gate listens on; handed to ``on_ready`` (the CLI prints it, tests use it)."""

    gate: Gate
    agi_port: int | None = None
    esl_port: int | None = None
    http_port: int | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def serve(config: GateConfig, *, on_ready: Callable[[Running], None] | None = None,
                handle_signals: bool = True) -> None:
    """Run until SIGTERM/SIGINT (or ``Running.stop`` is set), then shut down within a bound."""
    store = await open_store(config.store)
    audit = AuditSink(store, queue_size=config.audit_queue_size)
    audit.start()
    metrics = GateMetrics()
    from dncgate.lists.runner import start_services, stop_services
    from dncgate.lists.sync_metrics import SyncMetrics

    sync_metrics = SyncMetrics(metrics.registry)
    ledger = open_ledger(config.store, config.consent)  # the consent ledger, on the same store
    lists = await start_services(config, store, sync_metrics, ledger)
    sync_metrics.watch(lists.freshness)
    warm_up(tenant.dial_plan for tenant in config.tenants.values())
    gate = Gate(config.tenants, store, audit, store_deadline=config.store.timeout_ms / 1000, metrics=metrics,
                list_age=lists.freshness.age)
    running = Running(gate)
    agi: AgiServer | None = None
    esl: OutboundServer | None = None
    runner: web.AppRunner | None = None
    ivr = IvrContext(gate.tenants, ledger, settings=config.ivr.menu, ledger_deadline=config.ivr.ledger_deadline,
                     call_deadline=config.ivr.call_deadline)  # the subscriber self-service menu (/ivr, dncgate_app=ivr)
    try:
        if config.agi.enabled:
            agi = AgiServer(with_ivr(check_handler(gate), ivr_agi_handler(ivr)), host=config.agi.host,
                            port=config.agi.port,
                            limits=AgiLimits(max_sessions=config.agi.max_sessions))
            await agi.start()
            running.agi_port = agi.port
        if config.esl.enabled:
            settings = replace(EslCheckSettings(), **config.esl_handler.overrides())
            handler = with_esl_ivr(esl_check_handler(gate, settings), ivr_esl_handler(ivr, settings.sounds_dir))
            esl = OutboundServer(handler, OutboundConfig(
                host=config.esl.host, port=config.esl.port, max_sessions=config.esl.max_sessions,
                # the check's announcement is bounded at 30 s by its handler; an IVR call at
                # [ivr] call_deadline_s (600 s by default) by the IVR
                session_deadline=ivr.call_deadline + 60.0))
            await esl.start()
            running.esl_port = esl.port
        if config.http.enabled:
            doors = {"agi": agi is not None, "esl": esl is not None}
            app = make_app(store, metrics, doors, max_requests=config.http.max_sessions)
            if config.api.enabled:
                install_api(app, ApiContext.of(gate, ledger, config.api))  # /v1: same process, same loop
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, config.http.host, config.http.port, shutdown_timeout=1.0)
            await site.start()
            running.http_port = _bound_port(runner)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, running.stop.set)
        log.info("gate.started", config=config.source, store=config.store.backend, agi_port=running.agi_port,
                 esl_port=running.esl_port, http_port=running.http_port, tenants=sorted(config.tenants))
        if on_ready is not None:
            on_ready(running)
        await running.stop.wait()
        log.info("gate.stopping")
    finally:
        await stop_services(lists, timeout=SHUTDOWN_GRACE)
        if agi is not None:
            await agi.close(timeout=SHUTDOWN_GRACE)
        if esl is not None:
            await esl.close(timeout=SHUTDOWN_GRACE)
        if runner is not None:
            await runner.cleanup()
        await audit.close(timeout=SHUTDOWN_GRACE)
        await ledger.close()
        await store.close()
        log.info("gate.stopped", audit_written=audit.written, audit_unwritten=audit.overflowed)


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    return None
