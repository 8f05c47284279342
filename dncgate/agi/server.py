"""The FastAGI door: Asterisk connects, we run one :class:`AgiSession` per connection.

Accepting, the peer allowlist, the session caps and the bounded close are the shared
:class:`~dncgate.sessions.SessionServer`'s; this module supplies only the session coroutine.
"""

from __future__ import annotations

import asyncio

from dncgate.agi.limits import AgiLimits
from dncgate.agi.session import AgiHandler, run_session
from dncgate.config_file import AGI_HOST, AGI_PORT
from dncgate.sessions import Peer, ServerLimits, SessionServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "AgiServer"]

DEFAULT_HOST, DEFAULT_PORT = AGI_HOST, AGI_PORT  # [agi]'s defaults


class AgiServer(SessionServer):
    """FastAGI server.

    ``handler(session)`` runs once per connection after the header block arrived; the session closes
    the socket when it returns (Asterisk never does). A refused connection (a peer outside
    ``server_limits.allow``, or over a session cap) is closed at once: Asterisk then sets
    AGISTATUS=FAILURE and the shipped dialplan fails closed; classic AGI's relay decides in its own
    process when the gate drops it before a command.

    Usage::

        server = AgiServer(handler, port=4573)
        await server.start()
        ...
        await server.close(timeout=5.0)

    or ``async with AgiServer(handler) as server: await server.serve_forever()``.
    """

    def __init__(
        self,
        handler: AgiHandler,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        limits: AgiLimits | None = None,
        server_limits: ServerLimits | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits or AgiLimits()
        super().__init__("agi", self._session, host=host, port=port, limits=server_limits,
                         stream_limit=max(self.limits.read_chunk, 2**16))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> str:
        return await run_session(reader, writer, self.handler, self.limits, remote=peer.remote)
