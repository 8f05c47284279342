"""The early warning inside ``dncgate serve``: signals -> analyser -> alerts -> cases, persisted.

``EarlyWarning.open`` reads the window state the last run checkpointed (``[early_warning] path``,
SQLite) and builds the analyser with every tenant's rules. ``start`` subscribes it to the gate's
decisions (``Gate.observers``) and the switches' call records (``Running.calls``) and runs:

- the alert deliverer: each alert is written to the alert book (the same SQLite file; idempotent
  by alert id) and handed to enforcement (``EnforcementDesk.on_alert``: opens or updates a case),
  from a bounded queue (a full queue drops the alert with an error log: the call path never waits);
- the checkpoint: every ``checkpoint_interval_s`` the states that changed are written (a restart
  loses at most that long of counts; the levels the rules reached are in the state, so a restart
  raises no alert twice);
- the complaint-deadline watch (issue 12 item 6): every ``sla_check_interval_s`` the complaints
  whose forwarding, answer or reply is due within ``[enforcement.complaints] warn_before_hours``
  raise a report-only ``complaint_sla`` alert (critical once lapsed), one per complaint, step and
  state (a deadline's alert id is stable, so it is kept once);
- complaints filed through the desk count as a signal (``complaints_per_1000``).

With ``transport = "redis"`` (several switches, one view) the gate's facts go to the Redis
streams instead (``store.redis.fact_producer``) and this process's analyser is one of the group
that reads them (``store.redis.fact_consumer``): it counts the originators of the partitions it
holds, whichever gate decided their calls, and its checkpoint is that of those partitions, in
Redis (the SQLite file keeps the alert book only).

``close`` stops them within a bound and writes a last checkpoint. ``clock`` is the app's
(``App.clock``): the checkpoint's slot and the complaint deadlines read it, never the wall clock.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Callable, Iterable
from datetime import datetime

import structlog

from dncgate.clock import Clock
from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind, Severity
from dncgate.early_warning.analyser import IDLE_S, Analyser
from dncgate.early_warning.signals import Signals
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.errors import DncgateError
from dncgate.events import CallRecord
from dncgate.gate import Gate
from dncgate.settings.early_warning import EarlyWarningSettings, watches
from dncgate.store.redis.fact_consumer import PartitionConsumer, analyser_name
from dncgate.store.redis.fact_producer import FactProducer
from dncgate.store.redis.fact_stream import FactStreams
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore

log = structlog.get_logger("dncgate.early_warning")
CLOSE_GRACE = 5.0


class Shared:
    """The Redis side of ``transport = "redis"``: this gate's producer and this process's analyser in the group."""

    def __init__(self, streams: FactStreams, settings: EarlyWarningSettings, analyser: Analyser, clock: Clock,
                 name: str) -> None:
        stream = settings.stream
        self.streams = streams
        self.producer = FactProducer(streams, analyser.watches, queue=stream.queue, batch=stream.batch,
                                     flush_interval=stream.flush_interval)
        self.consumer = PartitionConsumer(streams, analyser, name=name, lease=stream.lease, batch=stream.batch,
                                          clock=clock)

    async def close(self) -> None:
        """What this gate holds sent, its partitions checkpointed and handed back."""
        try:
            await self.producer.flush()
            await self.consumer.close()
        finally:
            await self.streams.close()


class EarlyWarning:
    def __init__(self, settings: EarlyWarningSettings, tenants: Iterable[str], store: SqliteEarlyWarningStore, *,
                 clock: Clock, default_tenant: str = "default",
                 streams: FactStreams | None = None, name: str | None = None) -> None:
        self.settings, self.store = settings, store
        self.analyser = Analyser(watches(settings, tenants), on_alert=self._queue,
                                 max_originators=settings.max_originators)
        self.shared = Shared(streams, settings, self.analyser, clock, name or analyser_name()) \
            if streams is not None else None
        self.signals = Signals(self.shared.producer if self.shared else self.analyser, default_tenant=default_tenant)
        self._clock = clock
        self._alerts: asyncio.Queue[Alert] = asyncio.Queue(settings.alert_queue)
        self._tasks: list[asyncio.Task[None]] = []
        self._saved_at = 0  # the analyser's latest fact time at the last checkpoint
        self.desk: EnforcementDesk | None = None
        self.dropped = 0
        self.delivered = 0

    @classmethod
    async def open(cls, settings: EarlyWarningSettings, tenants: Iterable[str], *, redis_url: str | None = None,
                   **kwargs: object) -> EarlyWarning:
        """The analyser with the state the last run saved (``transport = "redis"``: on ``redis_url``,
        read when a partition is taken). Raises ``StoreError``."""
        store = SqliteEarlyWarningStore(settings.path)
        streams = None
        if settings.transport == "redis":
            if redis_url is None:
                raise ValueError("[early_warning] transport = \"redis\" needs the store's Redis URL")
            streams = FactStreams.connect(redis_url, partitions=settings.stream.partitions,
                                          maxlen=settings.stream.maxlen)
        try:
            running = cls(settings, tenants, store, streams=streams, **kwargs)  # type: ignore[arg-type]
            restored = 0 if streams is not None else \
                sum(running.analyser.restore(t, o, raw) for t, o, raw, _ in await store.windows())
        except BaseException:
            await store.close()
            if streams is not None:
                await streams.close()
            raise
        running._saved_at = running.analyser.latest
        log.info("early_warning.opened", path=str(settings.path), originators=restored)
        return running

    def _queue(self, alert: Alert) -> None:
        try:
            self._alerts.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("early_warning.alert_dropped", alert_id=alert.alert_id, queue=self._alerts.maxsize,
                      dropped=self.dropped)

    def start(self, gate: Gate, calls: AsyncGenerator[CallRecord, None], desk: EnforcementDesk | None) -> None:
        """Watch ``gate``'s decisions and the ``calls`` records; hand alerts to ``desk`` (None: book only)."""
        self.desk = desk
        gate.observers.append(self.signals.decision)
        if desk is not None:
            desk.complaints.on_complaint = self._complaint
        self._tasks = [asyncio.create_task(self._consume(calls), name="early-warning-calls"),
                       asyncio.create_task(self._deliver(), name="early-warning-alerts"),
                       asyncio.create_task(self._every(self.settings.checkpoint_interval, self.checkpoint),
                                           name="early-warning-checkpoint")]
        if desk is not None:
            self._tasks.append(asyncio.create_task(self._every(self.settings.sla_check_interval, self.check_deadlines),
                                                   name="early-warning-sla"))
        if self.shared is not None:
            self._tasks += [asyncio.create_task(self.shared.producer.run(), name="early-warning-send"),
                            asyncio.create_task(self.shared.consumer.run(), name="early-warning-partitions")]

    def _complaint(self, originator: OriginatorKey, at: datetime) -> None:
        if self.shared is not None:  # to every partition: its originator's holder counts it
            self.shared.producer.complaint(originator.tenant, originator.value, at.timestamp())
            log.info("early_warning.complaint", originator=str(originator), sent=True)
            return
        counted = self.analyser.complaint(originator.tenant, originator.value, at.timestamp())
        log.info("early_warning.complaint", originator=str(originator), counted=counted)

    async def _consume(self, calls: AsyncGenerator[CallRecord, None]) -> None:
        try:
            async for record in calls:
                self.signals.call(record)
        finally:
            await calls.aclose()

    async def _deliver(self) -> None:
        while True:
            alert = await self._alerts.get()
            try:
                await self.deliver(alert)
            finally:
                self._alerts.task_done()

    async def drain(self) -> None:
        """Until every alert queued so far is delivered (tests; bound it with ``asyncio.timeout``)."""
        await self._alerts.join()

    async def deliver(self, alert: Alert) -> None:
        """Book the alert and hand it to enforcement; a failure is logged (the alert stays in the log line)."""
        try:
            if self.desk is not None:
                await self.desk.on_alert(alert)  # books it too
            else:
                await self.store.add(alert)
            self.delivered += 1
        except (DncgateError, OSError) as exc:
            log.error("early_warning.alert_not_delivered", alert_id=alert.alert_id, error=str(exc),
                      error_type=type(exc).__name__, alert=alert.as_dict())

    async def _every(self, interval: float, job: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()  # type: ignore[misc]
            except (DncgateError, OSError) as exc:
                log.error("early_warning.job_failed", job=getattr(job, "__name__", "?"), error=str(exc),
                          error_type=type(exc).__name__)

    async def checkpoint(self) -> int:
        """Write every state that took a fact since the last checkpoint (its open slot closed first)."""
        if self.shared is not None:
            return await self.shared.consumer.commit()
        since = self._saved_at
        now = self._clock().timestamp()
        rows = self.analyser.checkpoint(now, since)
        written = await self.store.save_windows(rows) if rows else 0
        self._saved_at = self.analyser.latest
        forgotten = await self.store.forget_windows(int(now) - IDLE_S)
        log.debug("early_warning.checkpoint", written=written, forgotten=forgotten)
        return written

    async def check_deadlines(self) -> list[Alert]:
        """Raise an alert for each complaint step about to lapse (or lapsed)."""
        if self.desk is None:
            return []
        raised: list[Alert] = []
        now = self._clock()
        for tenant in self.desk.cases.tenants:
            for complaint, step, deadline in await self.desk.complaints.due(tenant):
                lapsed = deadline <= now
                stable = f"{tenant}|{complaint.id}|{step.value}|{'lapsed' if lapsed else 'due'}"
                alert = Alert(
                    alert_id="sla-" + hashlib.sha256(stable.encode()).hexdigest()[:28],
                    originator=OriginatorKey(tenant, OriginatorKind.CALLER_ID, complaint.originator_number),
                    rule="complaint_sla", severity=Severity.CRITICAL if lapsed else Severity.WARNING,
                    raised_at=now, window="sla", figures={"hours_left": round((deadline - now).total_seconds() / 3600,
                                                                             2)},
                    threshold=0.0, report_only=True,  # the carrier's own deadline: no case against the caller
                    detail=f"complaint {complaint.id}: {step.value} due {deadline.isoformat()}"
                           f"{' (lapsed)' if lapsed else ''}",
                    extra={"complaint_id": complaint.id, "step": step.value, "deadline": deadline.isoformat()},
                )
                if await self.store.add(alert):
                    log.warning("early_warning.complaint_deadline", alert_id=alert.alert_id, tenant=tenant,
                                complaint_id=complaint.id, step=step.value, lapsed=lapsed)
                    raised.append(alert)
        return raised

    async def close(self, timeout: float = CLOSE_GRACE) -> None:
        """Stop the tasks, deliver what is queued and write a last checkpoint, within ``timeout``."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(timeout):
                await self._last_checkpoint()  # it may raise alerts: delivered next
                while not self._alerts.empty():
                    await self.deliver(self._alerts.get_nowait())
                    self._alerts.task_done()
        except TimeoutError:
            log.warning("early_warning.close_timeout", queued=self._alerts.qsize(), timeout_s=timeout)
        finally:
            await self.store.close()

    async def _last_checkpoint(self) -> None:
        try:
            if self.shared is not None:
                await self.shared.close()
            else:
                await self.checkpoint()
        except (DncgateError, OSError) as exc:
            log.error("early_warning.last_checkpoint_failed", error=str(exc))
