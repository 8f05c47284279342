"""structlog set-up: one JSON object a line, constant dotted event names, UTC timestamps."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import structlog

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


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default). Safe to call more than once."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_Dumps(), ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
