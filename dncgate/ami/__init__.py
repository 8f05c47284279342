"""Asterisk Manager Interface feed: a reconnecting client over panoramisk and a call tracker."""

from dncgate.ami.calls import CallTracker, TrackerSettings
from dncgate.ami.causes import CAUSE_NAMES, cause_name
from dncgate.ami.client import AmiClient, AmiSettings, Backoff, BackoffPolicy, EventListener
from dncgate.ami.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiEncodingError,
    AmiError,
    AmiLoginError,
    AmiTimeout,
    AmiUnavailable,
)
from dncgate.ami.message import DEFAULT_NOISE, AmiMessage, AmiResponse

__all__ = [
    "CAUSE_NAMES",
    "DEFAULT_NOISE",
    "AmiActionError",
    "AmiClient",
    "AmiConnectionLost",
    "AmiEncodingError",
    "AmiError",
    "AmiLoginError",
    "AmiMessage",
    "AmiResponse",
    "AmiSettings",
    "AmiTimeout",
    "AmiUnavailable",
    "Backoff",
    "BackoffPolicy",
    "CallTracker",
    "EventListener",
    "TrackerSettings",
    "cause_name",
]
