"""structlog set-up: one JSON object a line, constant dotted event names, UTC timestamps."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import structlog


class _Dumps:
    """``json.dumps(obj, **kw)`` with the encoder built once, not on every line (dumps builds one per
    call whenever it is given any option); the same text."""

    def __init__(self) -> None:
        self._kw: dict[str, Any] | None = None
        self._encoder = json.JSONEncoder()

    def __call__(self, obj: Any, **kw: Any) -> str:
        if kw != self._kw:  # the renderer passes the same options every time: built on the first line
            self._encoder, self._kw = json.JSONEncoder(**kw), kw
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
