"""The switches' call feeds in ``dncgate serve``: one :class:`~dncgate.events.CallEventStream` for both.

``[ami]`` starts the Asterisk feed (:class:`~dncgate.ami.client.AmiClient` + :class:`CallTracker`),
``[esl_feed]`` the FreeSWITCH one (inbound event socket, :func:`~dncgate.esl.feed.run_esl_feed`).
Both connect in the background and keep reconnecting with backoff: the gate is ready for calls
without them (the call path never reads a feed), so a feed that is down shows in ``/healthz``
(``"feeds"``) and in ``/metrics`` (``dncgate_feed_up``) without failing the health check.

Each feed has a state: ``connecting`` (never connected yet), ``connected``, ``down`` (lost, or the
last attempt failed: ``last_error`` says why), with its connects, records published, bad events
and the time of its last event. A consumer (early warning) subscribes to :attr:`CallFeeds.stream`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dncgate.ami.calls import CallTracker
from dncgate.ami.client import AmiClient
from dncgate.ami.message import AmiMessage
from dncgate.ami.settings import AmiFeedSettings, AmiSettings, TrackerSettings
from dncgate.esl.feed import EslCallFeed, run_esl_feed
from dncgate.esl.inbound import InboundConfig
from dncgate.events import CallEventStream
from dncgate.settings import AsteriskFeedSettings, FreeswitchFeedSettings

__all__ = ["AsteriskFeed", "CallFeed", "CallFeeds", "FreeswitchFeed"]

log = structlog.get_logger("dncgate.feeds")
Clock = Callable[[], datetime]
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedCounts:
    """What a feed has read so far."""

    records: int  # call records published
    bad_events: int  # switch events that could not be read (counted, logged, skipped)
    last_event: datetime | None  # when the last event of the switch arrived


class CallFeed(ABC):
    """One switch's feed: connection state set by its client's ``on_state``; counters by subclasses."""

    def __init__(self, name: str, address: str, clock: Clock) -> None:
        self.name, self.address, self._clock = name, address, clock
        self.state = "connecting"
        self.since = clock()
        self.last_error = ""
        self.connects = 0
        self._changed = asyncio.Event()

    @abstractmethod
    def counts(self) -> FeedCounts:
        """What the feed has read so far."""

    @abstractmethod
    def start(self) -> None:
        """Connect in the background, reconnecting until :meth:`close`."""

    @abstractmethod
    async def close(self, timeout: float) -> None:
        """Stop within ``timeout``."""

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def moved(self, state: str, why: str) -> None:
        """The client's hook: ``("connected", "")`` or ``("down", why)``."""
        if state == "connected":
            self.connects += 1
        self.last_error = why
        if state != self.state:
            self.state, self.since = state, self._clock()
            log.info("feeds.state", feed=self.name, state=state, error=why or None, connects=self.connects)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[CallFeed], bool]) -> None:
        """Until ``predicate(self)`` holds after a state change (bound it with ``asyncio.timeout``)."""
        while not predicate(self):
            await self._changed.wait()

    def snapshot(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "state": self.state, "address": self.address, "since": self.since.isoformat(),
            "last_error": self.last_error or None, "connects": self.connects, "reconnects": self.reconnects,
            "records": counts.records, "bad_events": counts.bad_events,
            "last_event": counts.last_event.isoformat() if counts.last_event is not None else None,
        }


class AsteriskFeed(CallFeed):
    """``[ami]``: Asterisk Manager events -> :class:`CallTracker` -> records."""

    def __init__(self, settings: AmiFeedSettings, stream: CallEventStream, clock: Clock = _utc_now) -> None:
        manager = settings.manager
        super().__init__("ami", f"{manager.host}:{manager.port}", clock)
        self.client = AmiClient(manager, on_state=self.moved)
        self.tracker = CallTracker(stream, settings.calls, clock=clock)
        self.tracker.attach(self.client)
        self.client.add_listener(self._saw)
        self._last_event: datetime | None = None

    def _saw(self, _event: AmiMessage) -> None:
        self._last_event = self._clock()

    def counts(self) -> FeedCounts:
        return FeedCounts(self.tracker.emitted, self.client.failed_events, self._last_event)

    def start(self) -> None:
        self.client.start()

    async def close(self, timeout: float) -> None:
        await self.client.close(timeout)
        self.tracker.close()  # publishes the calls that have ended, drops the rest


class FreeswitchFeed(CallFeed):
    """``[esl_feed]``: FreeSWITCH's inbound event socket -> :class:`EslCallFeed` -> records."""

    def __init__(self, config: InboundConfig, stream: CallEventStream, clock: Clock = _utc_now) -> None:
        super().__init__("esl_feed", f"{config.host}:{config.port}", clock)
        self.config, self.stream = config, stream
        self.feed = EslCallFeed(stream, clock=clock)
        self._task: asyncio.Task[object] | None = None

    def counts(self) -> FeedCounts:
        return FeedCounts(self.feed.published, self.feed.bad_events, self.feed.last_event_at)

    def start(self) -> None:
        if self._task is None:
            # a refused password is retried at the backoff cap, as the AMI feed does: it can be fixed
            # on the switch while the gate runs
            self._task = asyncio.get_running_loop().create_task(run_esl_feed(
                self.stream, self.config, feed=self.feed, on_state=self.moved, retry_auth_errors=True),
                name="esl-feed")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("feeds.failed", feed=self.name, error=repr(exc))
            self.moved("down", f"feed stopped: {exc!r}")

    async def close(self, timeout: float) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            log.warning("feeds.close_timeout", feed=self.name, timeout_s=timeout)


def asterisk_feed_of(table: AsteriskFeedSettings) -> AmiFeedSettings | None:
    """``[ami]`` as the Asterisk feed's settings (None unless enabled); a key not set keeps the feed's default."""
    if not table.enabled:
        return None
    base = AmiSettings(username=table.username, secret=table.secret)
    manager = replace(
        base, host=_or(table.host, base.host), port=_or(table.port, base.port),
        connect_timeout=_or(table.connect_timeout, base.connect_timeout),
        keepalive_interval=_or(table.keepalive, base.keepalive_interval),
    )
    calls = TrackerSettings()
    if table.cdr_timezone is not None:
        calls = replace(calls, cdr_timezone=ZoneInfo(table.cdr_timezone))
    return AmiFeedSettings(manager, calls)


def freeswitch_feed_of(table: FreeswitchFeedSettings) -> InboundConfig | None:
    """``[esl_feed]`` as the FreeSWITCH feed's settings (None unless enabled); a key not set keeps its default."""
    if not table.enabled:
        return None
    base = InboundConfig()
    return replace(
        base, host=_or(table.host, base.host), port=_or(table.port, base.port),
        password=_or(table.password, base.password),
        connect_deadline=_or(table.connect_deadline, base.connect_deadline),
        event_deadline=_or(table.silence_deadline, base.event_deadline),
    )


def _or(value: T | None, default: T) -> T:
    """A key the configuration sets, else the feed's own default."""
    return default if value is None else value


class CallFeeds:
    """The configured feeds, publishing into one :attr:`stream`; ``health()`` for ``/healthz``."""

    def __init__(
        self,
        stream: CallEventStream,
        *,
        ami: AmiFeedSettings | None = None,
        esl_feed: InboundConfig | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = _utc_now,
    ) -> None:
        self.stream = stream
        self.feeds: dict[str, CallFeed] = {}
        if ami is not None:
            self.feeds["ami"] = AsteriskFeed(ami, stream, clock)
        if esl_feed is not None:
            self.feeds["esl_feed"] = FreeswitchFeed(esl_feed, stream, clock)
        if registry is not None:
            registry.register(_FeedCollector(self))

    def start(self) -> None:
        """Start every feed in the background; returns at once (a switch may be down)."""
        for feed in self.feeds.values():
            feed.start()
            log.info("feeds.started", feed=feed.name, address=feed.address)

    async def close(self, timeout: float) -> None:
        """Close every feed at once, each within ``timeout``."""
        results = await asyncio.gather(*(f.close(timeout) for f in self.feeds.values()), return_exceptions=True)
        for name, result in zip(self.feeds, results, strict=True):
            if isinstance(result, Exception):
                log.error("feeds.close_failed", feed=name, error=repr(result))

    def health(self) -> Mapping[str, Any]:
        return {name: feed.snapshot() for name, feed in self.feeds.items()}


class _FeedCollector(Collector):
    """Reads the feeds when Prometheus scrapes: nothing to keep in step."""

    def __init__(self, feeds: CallFeeds) -> None:
        self._feeds = feeds

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("dncgate_feed_up", "1 while the call feed is connected to its switch", labels=["feed"])
        records = CounterMetricFamily("dncgate_feed_records", "Call records the feed published", labels=["feed"])
        reconnects = CounterMetricFamily("dncgate_feed_reconnects", "Connections after the first", labels=["feed"])
        bad = CounterMetricFamily("dncgate_feed_bad_events", "Switch events that could not be read", labels=["feed"])
        last = GaugeMetricFamily("dncgate_feed_last_event_timestamp_seconds", "Unix time of the feed's last event",
                                 labels=["feed"])
        for name, feed in self._feeds.feeds.items():
            counts = feed.counts()
            up.add_metric([name], float(feed.state == "connected"))
            records.add_metric([name], counts.records)
            reconnects.add_metric([name], feed.reconnects)
            bad.add_metric([name], counts.bad_events)
            if counts.last_event is not None:
                last.add_metric([name], counts.last_event.timestamp())
        dropped = CounterMetricFamily("dncgate_call_records_dropped",
                                      "Call records a lagging subscriber of the stream lost")
        dropped.add_metric([], self._feeds.stream.dropped)
        return [up, records, reconnects, bad, last, dropped]
