"""structlog set-up: one JSON object a line, constant dotted event names, UTC timestamps."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from dncgate import jsontext


class _Dumps:
    """``json.dumps(obj, **kw)``, the same text: with the encoder built once, not on every line (dumps
    builds one per call whenever it is given any option), and a line of plain values (a decision's)
    made by msgspec (``dncgate.jsontext``)."""

    def __init__(self) -> None:
        self._kw: dict[str, Any] | None = None
        self._encoder = json.JSONEncoder()
        self._plain_too = False

    def __call__(self, obj: Any, **kw: Any) -> str:
        if kw != self._kw:  # the renderer passes the same options every time: built on the first line
            self._encoder, self._kw = json.JSONEncoder(**kw), kw
            self._plain_too = kw.get("ensure_ascii") is False and set(kw) <= {"ensure_ascii", "default"}
        if self._plain_too:
            return jsontext.spaced(obj, self._encoder.encode)
        return self._encoder.encode(obj)


def utc_timestamp() -> str:
    """``TimeStamper(fmt="iso", utc=True)``'s text for now (``datetime.now(UTC).isoformat()`` with "Z"
    for "+00:00"; no fraction when the microsecond is 0), its date and time to the second made once a
    second. ``datetime.now`` reads the same clock (``time.time_ns``) and floors it to the microsecond."""
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    if second != _second_text[0]:
        _second_text[:] = [second, datetime.fromtimestamp(second, UTC).isoformat()[:19]]
    return f"{_second_text[1]}.{micro:06d}Z" if micro else f"{_second_text[1]}Z"


_second_text: list[Any] = [None, ""]  # the last second utc_timestamp() formatted, and its text


class _Render:
    """The processors a line goes through, in one call: structlog's ``merge_contextvars``,
    ``add_log_level``, ``TimeStamper(fmt="iso", utc=True)``, ``format_exc_info`` (for a line with
    ``exc_info``) and ``JSONRenderer(ensure_ascii=False)``, the same keys in the same order; a
    chain of five costs each line five calls and the stamper's datetime formatting."""

    def __init__(self) -> None:
        self._json = structlog.processors.JSONRenderer(serializer=_Dumps(), ensure_ascii=False)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str | bytes:
        event_dict = structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
        event_dict = structlog.processors.add_log_level(logger, method_name, event_dict)
        event_dict["timestamp"] = utc_timestamp()
        if "exc_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
        return self._json(logger, method_name, event_dict)


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default). Safe to call more than once."""
    structlog.configure(
        processors=[_Render()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
