"""What fails before the HTTP app runs (issue 11.17): an over-long request line, too many headers,
an over-long header, bytes that are not HTTP. Each gets the API's JSON error shape and one warning
line, never aiohttp's plain-text 400 with a traceback. Raw sockets on loopback against the runner
``serve`` uses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from dncgate.http import make_app, start_http
from dncgate.metrics import GateMetrics
from dncgate.settings import HttpServerSettings


class Store:
    async def ping(self) -> None:  # /healthz's only use of the store
        return None


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = make_app(Store(), GateMetrics(), {"agi": True, "esl": False})  # type: ignore[arg-type]
    runner, bound = await start_http(app, HttpServerSettings(port=0))
    try:
        yield bound
    finally:
        await runner.cleanup()


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` whole, read the answer until the server closes; status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = b""
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):  # the server answers before reading it all
            await writer.drain()
        async with asyncio.timeout(30):
            # Chunk by chunk: the server closes with our excess bytes unread, so a reset may follow its answer.
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(65536):
                    raw += chunk
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):  # the server closed with our excess bytes unread
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


HOSTILE = {
    "request line of 20 KB": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "10,000 headers": b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10_000)) + b"\r\n",
    "a header line of 1 MB": b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n",
    "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_errors_before_the_app_runs_answer_json_and_log_one_warning(
    port: int, name: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        status, headers, body = await exchange(port, HOSTILE[name])
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error: dict[str, Any] = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"]
    warnings = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert [e["event"] for e in warnings] == ["http.bad_request"]
    assert warnings[0]["status"] == 400
    assert [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()] == []  # aiohttp's own logger


async def test_a_proper_request_still_answers(port: int) -> None:
    status, _, body = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
