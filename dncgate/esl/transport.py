"""The protocol an :class:`~dncgate.esl.connection.EslConnection` puts on its transport once started.

The stream's own protocol (``StreamReaderProtocol``) would buffer each chunk in a ``StreamReader``
and wake a reader task to take it; this one hands the chunk to the connection's decoder at once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["Sink", "TransportFeed"]


class Sink(Protocol):
    """Where the bytes go: the connection."""

    def data_received(self, data: bytes) -> None: ...

    def input_ended(self, exc: Exception | None) -> None:
        """EOF (``exc`` None) or the connection lost with ``exc``."""


class TransportFeed(asyncio.Protocol):
    """The transport's protocol once the connection starts: each chunk is decoded and dispatched as
    it arrives, with no reader task and no stream buffer between (one loop callback per chunk, not
    two).  Flow control and the connection's loss still go to the stream's own protocol, so the
    StreamWriter (write, drain, close, wait_closed) works as before.  Detached (the connection
    closed or its input ended), it no longer refers to the connection."""

    def __init__(self, conn: Sink, inner: asyncio.StreamReaderProtocol) -> None:
        self._conn: Sink | None = conn
        self._inner = inner

    def detach(self) -> None:
        self._conn = None

    def data_received(self, data: bytes) -> None:
        if self._conn is not None:
            self._conn.data_received(data)

    def eof_received(self) -> bool | None:
        if self._conn is not None:
            self._conn.input_ended(None)
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._conn.input_ended(exc)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
