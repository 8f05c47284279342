"""``dncgate serve``: the store, the audit sink, the gate and every enabled door in one process."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import msgspec
import structlog
from aiohttp import web

from dncgate.agi import AgiServer
from dncgate.agi.check import check_handler
from dncgate.analytics import EarlyWarning
from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.enforcement import install_enforcement
from dncgate.app import AUDIT_GRACE, open_app
from dncgate.audit_spool import SpoolError as AuditSpoolError
from dncgate.audit_spool import adopt_segments
from dncgate.clock import Clock, utc_now
from dncgate.console import install_console
from dncgate.console.wiring import console_context
from dncgate.descriptors import RESERVE, check_budget, raise_open_file_limit
from dncgate.enforcement.desk import AlertBook, EnforcementDesk, desk_of
from dncgate.enforcement.model import originator_keys
from dncgate.esl import OutboundConfig, OutboundServer
from dncgate.esl.check import esl_check_handler
from dncgate.esl.inbound import InboundClient, InboundConfig
from dncgate.events import CallEventStream, CallRecord
from dncgate.feeds import CallFeeds, asterisk_feed_of, freeswitch_feed_of
from dncgate.gate import Gate
from dncgate.http import make_app, start_http
from dncgate.ivr.agi import ivr_agi_handler, with_ivr
from dncgate.ivr.esl import ivr_esl_handler, with_esl_ivr
from dncgate.ivr.runner import IvrContext
from dncgate.messages.chatplan import ChatplanDoor, run_chatplan
from dncgate.messages.opt_out_spool import OptOutSpool, SpoolError
from dncgate.messages.retry import OptOutRetries
from dncgate.messages.service import MessageService
from dncgate.messages.smpp.proxy import SmppProxy, SmppProxyConfig
from dncgate.numbers import warm_up
from dncgate.reload import Reloader
from dncgate.replica.settle import settled_cases
from dncgate.sessions import ServerLimits
from dncgate.settings import Listener, Settings
from dncgate.store.factory import open_case_store, open_operator_store
from dncgate.store.protocol import ListStore
from dncgate.worker import WorkerRole, orphan_spools, worker_role

if TYPE_CHECKING:  # the list services are imported when serve() starts
    from dncgate.consent.ledger import Ledger
    from dncgate.lists.runner import SyncServices

log = structlog.get_logger("dncgate.service")
SHUTDOWN_GRACE = 5.0  # the doors and list services, closing together


@dataclass
class Running:
    """What a started gate listens on; handed to ``on_ready`` (the CLI prints it, tests use it)."""

    gate: Gate
    agi_port: int | None = None
    esl_port: int | None = None
    http_port: int | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    calls: CallEventStream = field(default_factory=CallEventStream)  # the feeds' records: subscribe here
    feeds: CallFeeds | None = None
    enforcement: EnforcementDesk | None = None  # [enforcement] enabled: its on_alert is the analyser's callback
    reload: Reloader | None = None  # what SIGHUP calls: re-read the configuration, apply what can change live
    smpp_port: int | None = None  # [messages.smpp] enabled
    early_warning: EarlyWarning | None = None  # [early_warning] enabled


async def serve(config: Settings, *, on_ready: Callable[[Running], None] | None = None,
                handle_signals: bool = True, clock: Clock = utc_now,
                overrides: Callable[[Settings], Settings] | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``Running.stop`` is set), then shut down within a bound.

    The doors and the list services close together (each within ``SHUTDOWN_GRACE``), then the
    audit sink gets ``AUDIT_GRACE`` to write what is queued: under Docker's 10 s stop timeout.
    ``clock``: the app's one time source (``open_app``'s, ``App.clock``): the gate, the ledger, the call
    feeds, the early warning, enforcement, the messages, the IVR and the console all read it (tests move
    it past a notice period); default the wall clock.
    ``overrides``: what the caller changed in the file's settings (``--demo``), applied again on each reload.
    """
    from dncgate.lists.runner import start_services
    from dncgate.lists.sync_metrics import SyncMetrics

    role = worker_role()
    if role is not None:  # a supervisor's worker: its own audit spool, every log line names it
        overrides = _as_worker(role, overrides)
        config = overrides(config)
        structlog.contextvars.bind_contextvars(worker=role.slot, pid=os.getpid())
    _open_files(config)
    _adopt_orphan_spools(config, role)
    async with open_app(config, ledger=True, metrics=True, spool=True, replica=True, audit_grace=AUDIT_GRACE,
                        clock=clock) as app:
        metrics, ledger, gate, clock = app.metrics, app.consent_ledger(), app.gate, app.clock
        if metrics is None:
            raise RuntimeError("open_app(metrics=True) gave no metrics")
        sync_metrics = SyncMetrics(metrics.registry)
        metrics.watch_audit(app.audit)
        lists: SyncServices | None = None
        agi: AgiServer | None = None
        esl: OutboundServer | None = None
        smpp: SmppProxy | None = None
        runner: web.AppRunner | None = None
        api: ApiContext | None = None
        feeds: CallFeeds | None = None
        desk: EnforcementDesk | None = None
        enforcing: list[asyncio.Task[None]] = []
        closing: list[Callable[[], Awaitable[None]]] = []
        watching: EarlyWarning | None = None
        try:
            lists = await start_services(config, app.store, app.freshness, sync_metrics, ledger)
            sync_metrics.watch(lists.freshness)
            warm_up(tenant.dial_plan for tenant in config.tenants.values())
            running = Running(gate)
            feeds = running.feeds = CallFeeds(running.calls, ami=asterisk_feed_of(config.ami),
                                              esl_feed=freeswitch_feed_of(config.esl_feed), registry=metrics.registry,
                                              clock=clock)
            feeds.start()  # in the background: a switch that is down shows in /healthz, calls need no feed
            if config.early_warning.enabled:
                watching = running.early_warning = await EarlyWarning.open(
                    config.early_warning, config.tenants, clock=clock, default_tenant=gate.default_tenant,
                    redis_url=config.store.url if config.early_warning.transport == "redis" else None)
                if watching.shared is not None:
                    metrics.watch_facts(watching.shared.producer, watching.shared.consumer)
            if config.enforcement.enabled:
                desk, enforcing = await _start_enforcement(config, app.store, running, clock,
                                                           watching.store if watching else None)
                running.enforcement = desk
            messages = _message_service(config, gate, ledger, running, clock)
            if messages is not None and config.messages.smpp.enabled:
                smpp = SmppProxy(messages, _smpp_config(config))
                await smpp.start()
                running.smpp_port = smpp.port
            if messages is not None and config.messages.freeswitch.enabled:
                enforcing.append(asyncio.create_task(_chatplan(config, messages, running.stop)))
            if watching is not None:
                watching.start(gate, running.calls.subscribe(), desk)
            ivr = IvrContext(gate.tenants, ledger, settings=config.ivr, clock=clock)  # the subscriber self-service menu
            if config.agi.enabled:
                agi = AgiServer(with_ivr(check_handler(gate), ivr_agi_handler(ivr)), host=config.agi.host,
                                port=config.agi.port, server_limits=_limits(config.agi))
                await agi.start()
                metrics.watch_door("agi", agi)
                running.agi_port = agi.port
            if config.esl.enabled:
                handler = with_esl_ivr(esl_check_handler(gate, config.esl),
                                       ivr_esl_handler(ivr, config.esl.sounds_dir))
                esl = OutboundServer(handler, OutboundConfig(
                    host=config.esl.host, port=config.esl.port,
                    # the check's announcement is bounded at 30 s by its handler; an IVR call at
                    # [ivr] call_deadline_s (600 s by default) by the IVR
                    session_deadline=config.ivr.call_deadline + 60.0),
                    server_limits=_limits(config.esl))
                await esl.start()
                metrics.watch_door("esl", esl)
                running.esl_port = esl.port
            if config.http.enabled:
                doors = {"agi": agi is not None, "esl": esl is not None}
                http = make_app(app.store, metrics, doors, max_requests=config.http.max_sessions,
                                feeds=feeds.health, lists_missing=app.freshness.read_missing)
                if config.api.enabled:
                    api = ApiContext.of(gate, ledger, config.api, messages=messages)
                    install_api(http, api)  # /v1: same process, same loop
                    if running.enforcement is not None:
                        install_enforcement(http, running.enforcement)
                if config.console.enabled:
                    operators = open_operator_store(config.store)
                    closing.append(operators.close)
                    install_console(http, console_context(
                        config, app, operators, ledger, desk, clock, {"agi": agi, "esl": esl}))
                runner, running.http_port = await start_http(http, config.http)
            reloader = running.reload = Reloader(config, app.tenants,
                                                 lambda new: api.replace_keys(new.api) if api else None, overrides)
            if handle_signals:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, running.stop.set)
                loop.add_signal_handler(signal.SIGHUP, reloader)  # re-read the file (dncgate.reload)
            # What start-up made lives as long as the gate: out of the collector's sight, so that a
            # collection on the call path walks the calls' own objects, not the app's (~5-17 us a check).
            gc.collect()
            gc.freeze()
            log.info("gate.started", config=str(config.path) if config.path else "none (built-in defaults)",
                     source=config.source, store=config.store.backend, agi_port=running.agi_port,
                     esl_port=running.esl_port, http_port=running.http_port, tenants=sorted(config.tenants),
                     event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0])
            if on_ready is not None:
                on_ready(running)
            if role is not None:
                role.report_ready()
            await running.stop.wait()
            log.info("gate.stopping")
        finally:
            await _close_doors(lists, agi, esl, runner, feeds, smpp)
            if watching is not None:
                await watching.close(SHUTDOWN_GRACE)
            await _stop_enforcement(desk, enforcing)
            for close in closing:
                await close()
    log.info("gate.stopped", audit_written=app.audit.written, audit_unwritten=app.audit.overflowed)


def _adopt_orphan_spools(config: Settings, role: WorkerRole | None) -> None:
    """The segments of spools no process owns any more (``dncgate.worker.orphan_spools``) into this
    gate's own, replayed when it opens; one that cannot be moved stays for a later start (logged)."""
    spool = config.audit_spool
    if spool is None:
        return
    own = spool.directory
    root = own.parent if role is not None else own
    for orphan in orphan_spools(root, role, config.serve.workers):
        try:
            moved = adopt_segments(orphan, own)
        except AuditSpoolError as exc:
            log.error("audit.orphan_spool_failed", orphan=str(orphan), spool=str(own), error=str(exc))
            continue
        if moved:
            log.info("audit.orphan_spool_adopted", orphan=str(orphan), spool=str(own), segments=moved)


def _as_worker(role: WorkerRole, overrides: Callable[[Settings], Settings] | None) -> Callable[[Settings], Settings]:
    """``overrides`` and then the worker's own audit spool (``dncgate.worker``): at start and at each reload."""
    def worker_settings(read: Settings) -> Settings:
        settings = overrides(read) if overrides is not None else read
        spool = settings.audit_spool
        if spool is None:
            return settings
        spool.directory.mkdir(exist_ok=True)  # the workers' spools are in it; its parent must exist, as without
        own = str(role.spool_dir(spool.directory))
        return replace(settings, audit=msgspec.structs.replace(settings.audit, spool_dir=own))

    return worker_settings


def _message_service(config: Settings, gate: Gate, ledger: Ledger, running: Running,
                     clock: Clock) -> MessageService | None:
    """``[messages]``: the message check; a service port's misuse goes to enforcement when it runs."""
    if not config.messages.enabled:
        return None
    on_alert = running.enforcement.on_alert if running.enforcement is not None else None
    return MessageService.of(gate, ledger, config.messages, on_alert=on_alert, clock=clock)


async def _chatplan(config: Settings, messages: MessageService, stop: asyncio.Event) -> None:
    """FreeSWITCH's chatplan messages from the inbound event socket, until serve stops."""
    chat = config.messages.freeswitch
    inbound = InboundConfig(host=chat.host, port=chat.port, events=("MESSAGE",), event_format="plain")
    if chat.password is not None:
        inbound = replace(inbound, password=chat.password)
    spool = _opt_out_spool(config)
    retries = OptOutRetries(messages, spool=spool)
    try:
        await run_chatplan(ChatplanDoor(messages, tenant=chat.tenant or None, retries=retries),
                           lambda: InboundClient(inbound), stop)
    finally:
        if spool is not None:
            spool.close()


def _opt_out_spool(config: Settings) -> OptOutSpool | None:
    """The chatplan's unrecorded opt-outs, in the audit spool's directory (its lock is this gate's)."""
    audit = config.audit_spool
    if audit is None:
        log.warning("messages.opt_out_spool_disabled", detail="a restart loses the opt-outs not yet recorded")
        return None
    try:
        return OptOutSpool.open(audit.directory)
    except SpoolError as exc:  # kept in memory meanwhile: retried, lost only to a restart
        log.error("messages.opt_out_spool_failed", error=str(exc))
        return None


def _smpp_config(config: Settings) -> SmppProxyConfig:
    smpp = config.messages.smpp
    return SmppProxyConfig(host=smpp.host, port=smpp.port, upstream_host=smpp.upstream_host,
                           upstream_port=smpp.upstream_port, tenant=smpp.tenant or None,
                           limits=ServerLimits(max_sessions=smpp.max_sessions,
                                               max_sessions_per_peer=smpp.max_sessions_per_peer, allow=smpp.allow),
                           connect_deadline=smpp.connect_deadline, write_deadline=smpp.response_deadline,
                           idle_deadline=smpp.idle_deadline)


async def _close_doors(
    lists: SyncServices | None, agi: AgiServer | None, esl: OutboundServer | None, runner: web.AppRunner | None,
    feeds: CallFeeds | None = None, smpp: SmppProxy | None = None,
) -> None:
    """Stop every door, the list services and the call feeds at once, each bounded by ``SHUTDOWN_GRACE``."""
    from dncgate.lists.runner import stop_services

    parts: dict[str, Awaitable[None]] = {}
    if lists is not None:
        parts["lists"] = stop_services(lists, timeout=SHUTDOWN_GRACE)
    if agi is not None:
        parts["agi"] = agi.close(timeout=SHUTDOWN_GRACE)
    if esl is not None:
        parts["esl"] = esl.close(timeout=SHUTDOWN_GRACE)
    if runner is not None:
        parts["http"] = runner.cleanup()
    if feeds is not None:
        parts["feeds"] = feeds.close(timeout=SHUTDOWN_GRACE)
    if smpp is not None:
        parts["smpp"] = smpp.close(timeout=SHUTDOWN_GRACE)
    results = await asyncio.gather(*parts.values(), return_exceptions=True)
    for name, result in zip(parts, results, strict=True):
        if isinstance(result, Exception):
            log.error("gate.stop_failed", part=name, error=repr(result))


def _open_files(config: Settings) -> None:
    """Raise the soft open-file limit; refuse caps the doors could not all hold (descriptors.py)."""
    needs: dict[str, int] = {}
    if config.agi.enabled:
        needs["agi.max_sessions"] = config.agi.max_sessions
    if config.esl.enabled:  # a refused call is still answered (connect): as many again
        needs["esl.max_sessions x 2"] = 2 * config.esl.max_sessions
    if config.http.enabled:
        needs["http.max_connections"] = config.http.max_connections
    if config.feed.enabled:
        needs["feed.max_connections"] = config.feed.max_connections
    if config.messages.enabled and config.messages.smpp.enabled:  # each ESME session holds the SMSC's too
        needs["messages.smpp.max_sessions x 2"] = 2 * config.messages.smpp.max_sessions
    files = raise_open_file_limit()
    log.info("gate.open_files", soft_before=files.soft_before, soft=files.soft, hard=files.hard,
             needed=sum(needs.values()) + RESERVE, reserve=RESERVE)
    check_budget(needs, files.soft)


async def _start_enforcement(config: Settings, store: ListStore, running: Running,
                             clock: Clock, alerts: AlertBook | None = None,
                             ) -> tuple[EnforcementDesk, list[asyncio.Task[None]]]:
    """The case store, the scheduler (due suspensions) and the releaser of restricted calls in progress."""
    case_store = settled_cases(open_case_store(config.store), config.replica)  # settles when [replica] enabled
    desk = desk_of(config.enforcement, config.tenants, case_store, store, clock=clock, alerts=alerts)
    calls = running.calls.subscribe()  # registered now: no record published after start is missed
    tasks = [asyncio.create_task(desk.cases.run(running.stop, config.enforcement.scheduler_interval)),
             asyncio.create_task(_release_ended_calls(calls, running.gate))]
    return desk, tasks


async def _release_ended_calls(calls: AsyncGenerator[CallRecord, None], gate: Gate) -> None:
    """A restricted originator's call that ended no longer counts as in progress (enforcement.limits)."""
    try:
        async for record in calls:
            for key in originator_keys(account=record.account, caller_id=record.originator):
                gate.restrictions.release(key)
    finally:
        await calls.aclose()


async def _stop_enforcement(desk: EnforcementDesk | None, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if desk is not None:
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await desk.cases.drain()
        except TimeoutError:
            log.warning("enforcement.deliveries_abandoned", advice="their delivery is not recorded")
        await desk.cases.store.close()


def _limits(door: Listener) -> ServerLimits:
    """A call door's session caps and peer allowlist, from its ``[agi]`` or ``[esl]`` table."""
    return ServerLimits(max_sessions=door.max_sessions, max_sessions_per_peer=door.max_sessions_per_peer,
                        allow=door.allow)
