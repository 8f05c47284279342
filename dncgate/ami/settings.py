"""Settings of the Asterisk call feed: the manager connection and the call tracker.

A module of its own, importing nothing heavy (not panoramisk): the configuration reads ``[ami]``
into these types, and classic AGI reads the same configuration on every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from dncgate.ami.message import DEFAULT_NOISE
from dncgate.config_file import LOOPBACK_HOST

__all__ = ["AmiFeedSettings", "AmiSettings", "TrackerSettings"]


@dataclass(frozen=True, slots=True)
class AmiSettings:
    username: str
    secret: str = field(repr=False)
    host: str = LOOPBACK_HOST
    port: int = 5038
    connect_timeout: float = 2.0  # TCP connect + Login response
    action_timeout: float = 2.0  # default deadline of each action
    backoff_base: float = 0.5  # first reconnect delay
    backoff_max: float = 30.0
    backoff_jitter: float = 0.2  # +/- fraction of each delay
    events: str = "on"  # Login ``Events:`` ("on", "off" or a class mask such as "call,cdr")
    keepalive_interval: float | None = 20.0  # Ping after this long without a disconnect; None: off
    noise: frozenset[str] = DEFAULT_NOISE  # event names never passed to listeners
    close_timeout: float = 1.0


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    switch: str = "asterisk"
    grace: float = 2.0  # wait this long for the Cdr after the Hangup (or the Hangup after the Cdr)
    max_calls: int = 10_000  # calls in flight
    ttl: float = 4 * 3600.0  # seconds a call may stay in flight before it is evicted
    cdr_timezone: tzinfo = UTC  # the Asterisk host's local time zone (Cdr times carry none)
    remember_finished: int = 4096  # ids of emitted calls kept to recognise late duplicates


@dataclass(frozen=True, slots=True)
class AmiFeedSettings:
    """``[ami]`` of a configuration: where the manager is and how its calls become records."""

    manager: AmiSettings
    calls: TrackerSettings = TrackerSettings()
