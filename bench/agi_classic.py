"""Classic AGI start-to-verdict time: spawn ``dncgate-agi`` like Asterisk does, time until MSet.

    .venv/bin/python bench/agi_classic.py [--runs 30]

Target (issue 3): <= 80 ms. Uses a throw-away SQLite store with one listed number; measures the
relay to a running gate (the fast path) and the in-process decision (no gate running).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dncgate.logs import configure
from dncgate.store.sqlite import SqliteListStore
from tests.agi.agi_helpers import check_server

HEADER = (
    "agi_request: dncgate-agi\nagi_channel: PJSIP/uac-00000001\nagi_language: en\nagi_type: PJSIP\n"
    "agi_uniqueid: 1795809160.17\nagi_callerid: 4001234567\nagi_context: outbound\nagi_extension: 2015550123\n"
    "agi_priority: 1\nagi_accountcode: \nagi_arg_1: 2015550123\nagi_arg_2: tenant=default\n"
    "agi_arg_3: purpose=marketing\n\n"
)


async def one_run(binary: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        binary, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(HEADER.encode())
    await proc.stdin.drain()
    verdict_at = 0.0
    line = b""
    while line := await proc.stdout.readline():
        if line.startswith(b"EXEC MSet"):
            verdict_at = time.perf_counter() - started
            verdict = line.decode().split("DNCGATE_VERDICT=")[1].split(",")[0]
        proc.stdin.write(b"200 result=0\n")
        await proc.stdin.drain()
    proc.stdin.close()
    await proc.wait()
    return verdict_at, verdict


async def measure(binary: str, env: dict[str, str], runs: int) -> list[float]:
    await one_run(binary, env)  # warm the page cache
    times = []
    for _ in range(runs):
        elapsed, verdict = await one_run(binary, env)
        assert verdict == "reject", verdict
        times.append(elapsed * 1000)
    return sorted(times)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    binary = str(Path(sys.executable).parent / "dncgate-agi")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "agi.sqlite3"
        store = SqliteListStore(db)
        await store.replace_list("national", [12015550123])
        env = dict(os.environ, DNCGATE_STORE__PATH=str(db), DNCGATE_TENANTS__DEFAULT__REGION="US",
                   DNCGATE_LOG_LEVEL="warning")
        env.pop("DNCGATE_CONFIG", None)
        # Fast path: a gate (the same /check handler, on the same store) is up: dncgate-agi relays.
        try:
            async with check_server(store) as server:
                relayed = await measure(binary, dict(env, DNCGATE_AGI_RELAY=f"127.0.0.1:{server.port}"), args.runs)
        finally:
            await store.close()
        # Slow path: no gate to relay to: the decision is made in the dncgate-agi process.
        alone = await measure(binary, dict(env, DNCGATE_AGI_RELAY="off"), args.runs)
    for label, times in (("relayed to dncgate serve", relayed), ("in-process (no gate running)", alone)):
        print(f"classic AGI start-to-verdict, {label}, {args.runs} runs: p50 {statistics.median(times):.1f} ms, "
              f"p90 {times[int(len(times) * 0.9)]:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    with open(os.devnull, "w") as nowhere:  # the bench's own gate logs nowhere
        configure("warning", nowhere)
        asyncio.run(main())
