"""The reseller feed's listener is the gate's own (issue 11 item 9: a flood on one door never stops
another): capped like [http] (tests/api/test_http_limits.py), and a TLS peer that never starts its
handshake is closed at the header timeout. Waits are upper bounds, never speed targets."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from dncgate.lists.feed import FeedPublisher, FeedServer
from dncgate.settings.schema import FeedSettings
from tests.lists.sync_helpers import numbers
from tests.lists.tls_helpers import make_pki


async def test_a_tls_peer_that_never_shakes_hands_is_closed(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    feed_dir = tmp_path / "feed"
    await FeedPublisher(feed_dir, "national").snapshot(3, numbers(0, 5))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = FeedServer(feed_dir, {"r": "t"}, ssl_context=context,
                        bounds=FeedSettings(max_connections=2, header_timeout=0.5))
    await server.start()
    try:
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        async with asyncio.timeout(10):
            for reader, _ in silent:  # the third waits in the backlog (max_connections 2) for a slot
                assert await reader.read() == b""
        for _, writer in silent:
            writer.close()
        client = ssl.create_default_context(cafile=str(pki.ca))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client,
                                                       server_hostname="127.0.0.1")
        writer.write(b"GET /feed/manifest.json HTTP/1.1\r\nHost: feed\r\nAuthorization: Bearer t\r\n"
                     b"Connection: close\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            await reader.read()
        writer.close()
    finally:
        await server.close()
