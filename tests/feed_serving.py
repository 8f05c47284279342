"""Helpers of the call-feed tests that run ``dncgate serve``: a configuration and the HTTP probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from dncgate.settings import Settings, load


def feed_config(tmp_path: Path, tables: str) -> Settings:
    """serve on free 127.0.0.1 ports (FastAGI, HTTP; no ESL door), an SQLite store, plus ``tables``."""
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""\
[store]
path = "{tmp_path / 'gate.sqlite3'}"

[agi]
port = 0

[http]
port = 0

[tenants.default]
required_lists = []  # the feed tests load no list: without this the gate is not ready (list_missing)

[tenants.default.hours]
enabled = false

{tables}""", encoding="utf-8")
    return load(path, environ={})


async def healthz(port: int | None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as reply:
        return reply.status, await reply.json()


async def metric_lines(port: int | None, prefix: str) -> set[str]:
    """The /metrics sample lines starting with ``prefix``."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        text = await reply.text()
    return {line for line in text.splitlines() if line.startswith(prefix)}
