"""Wire list sync into the gate from its configuration: ``dncgate lists sync`` and ``dncgate serve``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field

import structlog

from dncgate.consent.ledger import Ledger
from dncgate.enforcement.feed_standings import StandingsSink
from dncgate.enforcement.protocol import CaseStore
from dncgate.lists.feed import FeedPublisher, FeedServer
from dncgate.lists.freshness import ListFreshness
from dncgate.lists.manifest import load_public_key
from dncgate.lists.registrations import run_forwarder
from dncgate.lists.sources import DropDirSource, HttpSettings, HttpSource, SyncSource
from dncgate.lists.standings import StandingsSync
from dncgate.lists.sync import Syncer, SyncError, SyncJob, SyncObserver, SyncReport, WriteProgress, cause_of_exit
from dncgate.lists.upstream import Outbox, Pusher
from dncgate.settings import Settings
from dncgate.store.errors import StoreError
from dncgate.store.factory import open_case_store, open_standings_sink
from dncgate.store.protocol import ListStore, stats_of

log = structlog.get_logger("dncgate.lists.runner")
SYNC_NICENESS = 10  # the child sync yields the CPU to the process answering calls
ISOLATED_SYNC_DEADLINE = 2 * 3600.0  # a 100M-number snapshot takes minutes; a stuck child is killed


def source_problem(config: Settings) -> str | None:
    """Why ``config`` names no source to sync from, or None: checked before anything is opened
    or created, so ``dncgate lists sync`` without a source says so instead of failing on a URL."""
    sync = config.sync
    if sync.source != "http":
        return None
    if not sync.url:
        return ('no [sync] source is set: set [sync] url to the manifest\'s http:// or https:// URL, '
                'or source = "dir" and its directory')
    if not sync.url.startswith(("http://", "https://")):
        return f"[sync] url {sync.url!r}: an http source needs an http:// or https:// URL"
    return None


def make_source(config: Settings) -> SyncSource:
    sync = config.sync
    if sync.source == "dir":
        return DropDirSource(sync.directory)
    return HttpSource(HttpSettings(sync.url, auth_header=sync.auth_header, client_cert=sync.client_cert,
                                   client_key=sync.client_key, ca_file=sync.ca_file))


def make_syncer(config: Settings, store: ListStore, source: SyncSource,
                observer: SyncObserver | None = None) -> Syncer:
    sync = config.sync
    settings = SyncJob(list_name=sync.list_name, region=sync.region or config.national_region,
                            max_shrink=sync.max_shrink, workdir=sync.workdir,
                            public_key=load_public_key(sync.public_key) if sync.public_key else None)
    publisher = FeedPublisher(sync.publish_dir, sync.list_name) if sync.publish_dir else None
    return Syncer(store, source, settings, observer=observer, publisher=publisher)


async def sync_once(config: Settings, store: ListStore, *, force: bool = False,
                    progress: WriteProgress | None = None, accept_older_standings: bool = False) -> list[str]:
    """One sync (a drop directory: every pending drop, oldest first); returns a line per sync.
    ``accept_older_standings``: the carrier's standings are applied even if older than those applied."""
    source = make_source(config)
    lines = []
    try:
        syncer = make_syncer(config, store, source)
        for _ in range(100 if config.sync.source == "dir" else 1):
            report = await syncer.sync_once(force=force, progress=progress)
            lines.append(f"{report.list_name}: {report.outcome}, sequence {report.sequence}"
                         + (f", snapshot {report.snapshot} ({report.loaded:,} numbers)" if report.snapshot else "")
                         + (f", deltas {report.deltas} (+{report.added:,} -{report.removed:,})"
                            if report.deltas else "")
                         + f", invalid lines {len(report.invalid):,}, {report.seconds:.1f} s")
            for error in report.invalid[:20]:
                lines.append(f"  line {error.line}: {error.text!r}: {error.problem}")
            if report.outcome != "updated":
                break
    finally:
        try:
            if isinstance(source, HttpSource) and config.sync.standings_tenant:
                lines.append(await _standings_once(config, source, accept_older_standings))
        finally:
            await source.close()
    return lines


async def _standings_once(config: Settings, source: HttpSource, accept_older: bool) -> str:
    """``[sync] standings_tenant``: the carrier's standings, applied once; a line saying what changed."""
    sink = open_standings_sink(config.store)
    try:
        applied = await StandingsSync(source, sink, config.sync.standings_tenant, accept_older=accept_older).sync_once()
    finally:
        await sink.close()
    if applied is None:
        return "standings: nothing applied (see the log), the standings applied before are kept"
    return (f"standings: version {applied.version}, +{applied.added} ~{applied.changed} -{applied.removed}"
            f" (kept the reseller's own: {applied.kept_local})")


@dataclass
class SyncServices:
    """The background work ``serve`` runs for lists: periodic sync, freshness, pusher, reseller feed."""

    freshness: ListFreshness
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    source: SyncSource | None = None
    outbox: Outbox | None = None
    feed: FeedServer | None = None
    cases: CaseStore | None = None  # a carrier's: the standings its feed serves
    standings: StandingsSink | None = None  # a reseller's: where its carrier's standings are applied


async def start_services(config: Settings, store: ListStore, freshness: ListFreshness,
                         observer: SyncObserver | None, ledger: Ledger | None = None) -> SyncServices:
    """Start the list's background work; ``freshness`` (read once by ``dncgate.app``) is kept current."""
    services = SyncServices(freshness)
    services.tasks.append(asyncio.create_task(freshness.run(services.stop)))
    sync = config.sync
    if sync.enabled or sync.outbox is not None:
        services.source = make_source(config)
    if sync.enabled and services.source is not None:
        if sync.isolate:
            services.tasks.append(asyncio.create_task(
                _periodic_isolated(config, observer, freshness, services.stop)))
        else:
            syncer = make_syncer(config, store, services.source, observer)
            standings = None
            if isinstance(services.source, HttpSource) and sync.standings_tenant:
                services.standings = open_standings_sink(config.store)
                standings = StandingsSync(services.source, services.standings, sync.standings_tenant)
            services.tasks.append(asyncio.create_task(
                _periodic(syncer, freshness, sync.interval_s, services.stop, standings)))
    if sync.outbox is not None and services.source is not None:
        services.outbox = Outbox(sync.outbox, region=sync.region or config.national_region)
        services.tasks.append(asyncio.create_task(Pusher(services.outbox, services.source).run(services.stop)))
        if ledger is not None:  # registrations made through the API and the IVR
            services.tasks.append(asyncio.create_task(
                run_forwarder(ledger, services.outbox, config.tenants, services.stop)))
    if config.feed.enabled and sync.publish_dir is not None:
        tokens = dict(t.split(":", 1) for t in config.feed.tokens)
        strictest = min((t.max_list_age for t in config.tenants.values()), default=None)
        services.cases = open_case_store(config.store)  # what its gate enforces, served to each reseller
        services.feed = FeedServer(sync.publish_dir, tokens, host=config.feed.host, port=config.feed.port,
                                   registrations=services.outbox, bounds=config.feed,
                                   confirmed_age=freshness.age, max_age=strictest,
                                   standings=services.cases, standing_tenants=config.tenants)
        await services.feed.start()
    return services


async def _periodic(syncer: Syncer, freshness: ListFreshness, interval: float, stop: asyncio.Event,
                    standings: StandingsSync | None = None) -> None:
    while not stop.is_set():
        try:
            await syncer.sync_once()
            await freshness.refresh()
        except SyncError:
            pass  # logged as sync.failed and counted by cause; retried at the next interval
        except Exception as exc:  # noqa: BLE001 -- the periodic sync must outlive any one failure
            log.error("sync.unexpected_error", error=f"{type(exc).__name__}: {exc}")
        if standings is not None:  # whatever became of the list: a stale list stops no suspension
            try:
                await standings.sync_once()  # logs its own failures; what was applied before stays
            except Exception as exc:  # noqa: BLE001 -- nor may an unforeseen one stop the list sync
                log.error("standings.unexpected_error", error=f"{type(exc).__name__}: {exc}")
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass


def sync_command(config: Settings) -> list[str]:
    """``dncgate lists sync`` as a child process of this one: same interpreter, same configuration file
    (environment overrides are inherited)."""
    command = [sys.executable, "-m", "dncgate.cli"]
    if config.path is not None:
        command += ["--config", str(config.path)]
    return [*command, "lists", "sync", "--nice", str(SYNC_NICENESS)]


async def _periodic_isolated(config: Settings, observer: SyncObserver | None, freshness: ListFreshness,
                             stop: asyncio.Event) -> None:
    """The periodic sync in a child process; this process only refreshes the list's age afterwards."""
    interval = config.sync.interval_s
    while not stop.is_set():
        cause = await _run_child(sync_command(config), deadline=max(interval, ISOLATED_SYNC_DEADLINE), stop=stop)
        if observer is not None and cause is not None:
            observer.failed(config.sync.list_name, cause)
        elif observer is not None and not stop.is_set():
            await _report_success(freshness.store, config.sync.list_name, observer)
        with contextlib.suppress(Exception):  # refresh() logs its own failures
            await freshness.refresh()
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass


async def _report_success(store: ListStore, list_name: str, observer: SyncObserver) -> None:
    """What the child applied, read back from the store (the list's sync state and size)."""
    try:
        state = await store.sync_state(list_name)
        live = await stats_of(store, list_name)
    except StoreError as exc:
        log.warning("sync.report_failed", list_name=list_name, error=str(exc))
        return
    sequence = state.get("sequence", "")
    report = SyncReport(list_name, sequence=int(sequence) if sequence.isdigit() else None)
    observer.succeeded(list_name, report, live.count if live is not None else None)


async def _run_child(command: list[str], *, deadline: float, stop: asyncio.Event) -> str | None:
    """Run ``command`` (its log lines go to our stderr); None on success, else a failure cause."""
    try:
        child = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.DEVNULL)
    except OSError as exc:
        log.error("sync.child_failed", error=str(exc))
        return "child_start"
    stopping = asyncio.ensure_future(stop.wait())
    waiting = asyncio.ensure_future(child.wait())
    try:
        done, _ = await asyncio.wait({stopping, waiting}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if waiting not in done:
        child.kill()  # a load killed half-way leaves the previous version serving
        await child.wait()
        log.error("sync.child_killed", reason="shutdown" if stop.is_set() else f"ran longer than {deadline:.0f} s")
        return None if stop.is_set() else "child_timeout"
    if child.returncode != 0:
        cause = cause_of_exit(child.returncode or 0) or "child_exit"
        log.error("sync.child_failed", exit_code=child.returncode, cause=cause)
        return cause
    log.info("sync.child_done")
    return None


async def stop_services(services: SyncServices, timeout: float = 5.0) -> None:
    services.stop.set()
    if services.tasks:
        _, pending = await asyncio.wait(services.tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*services.tasks, return_exceptions=True)
    if services.feed is not None:
        await services.feed.close()
    if services.source is not None:
        await services.source.close()
    if services.outbox is not None:
        await services.outbox.close()
    for store in (services.cases, services.standings):
        if store is not None:
            await store.close()
