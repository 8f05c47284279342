"""Classic AGI: Asterisk runs us as a child process and talks over stdin/stdout.

The conversation is the same as FastAGI minus ``agi_network``, so the same :func:`run_session` runs it::

    async def main() -> None:
        outcome = await run_stdio_session(handler)

Logging must not go to stdout in this mode (stdout *is* the protocol): configure structlog with
``structlog.PrintLoggerFactory(sys.stderr)`` (or a stdlib handler on stderr) before the session starts.
"""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Any

from dncgate.agi.limits import AgiLimits
from dncgate.agi.session import AgiHandler, SessionOutcome, run_session

__all__ = ["StdioWriter", "open_stdio_streams", "run_stdio_session"]


class StdioWriter:
    """A ByteWriter over the stdout pipe whose close() also closes the stdin pipe transport."""

    def __init__(self, writer: asyncio.StreamWriter, read_transport: asyncio.ReadTransport) -> None:
        self._writer = writer
        self._read_transport = read_transport

    @property
    def transport(self) -> asyncio.WriteTransport:
        return self._writer.transport

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._read_transport.close()
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()


async def open_stdio_streams(
    stdin: IO[Any] | None = None, stdout: IO[Any] | None = None, *, initial: bytes = b"",
) -> tuple[asyncio.StreamReader, StdioWriter]:
    """Wrap two pipe-like file objects (default: this process's stdin/stdout) as a (reader, writer) pair.

    Closing the writer closes both pipes (the file objects are owned by the transports from now on).
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    if initial:
        reader.feed_data(initial)  # bytes already read from stdin (the classic relay's header)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stdin or sys.stdin,
    )
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), stdout or sys.stdout,
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, StdioWriter(writer, read_transport)


async def run_stdio_session(
    handler: AgiHandler,
    limits: AgiLimits | None = None,
    *,
    stdin: IO[Any] | None = None,
    stdout: IO[Any] | None = None,
    initial: bytes = b"",
) -> SessionOutcome:
    """Run one classic-AGI session over stdin/stdout with the same error boundary as FastAGI;
    ``initial`` is what was already read from stdin."""
    reader, writer = await open_stdio_streams(stdin, stdout, initial=initial)
    return await run_session(reader, writer, handler, limits, remote="stdio")
