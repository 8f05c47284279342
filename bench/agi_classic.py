"""Classic AGI start-to-verdict time: spawn ``dncgate-agi`` like Asterisk does, time until MSet.

    .venv/bin/python bench/agi_classic.py [--runs 30] [--chroot /var/cache/dncgate/asterisk-sid]

Target (issue 3): <= 80 ms. Uses a throw-away SQLite store with one listed number; measures the
relay to a running gate (the fast path) and the in-process decision (no gate running), each
beside a baseline measured in the same run: the bare interpreter's start (``python -c pass``),
which is what a loaded machine slows down first. With ``--chroot`` (root; the chroot that
scripts/asterisk-chroot-python.sh fills) it runs /opt/dncgate/bin/dncgate-agi inside it, as
Asterisk does in tests/e2e/test_classic_agi.py (which asserts the verdicts, not the times).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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


async def one_run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(HEADER.encode())
    await proc.stdin.drain()
    verdict_at, verdict = 0.0, ""
    line = b""
    while line := await proc.stdout.readline():
        if line.startswith(b"EXEC MSet"):
            verdict_at = time.perf_counter() - started
            verdict = line.decode().split("DNCGATE_VERDICT=")[1].split(",")[0]
        proc.stdin.write(b"200 result=0\n")
        await proc.stdin.drain()
    proc.stdin.close()
    await proc.wait()
    if not verdict_at:  # a bare interpreter: its start to its exit
        verdict_at = time.perf_counter() - started
    return verdict_at, verdict


async def measure(argv: list[str], env: dict[str, str], runs: int, expect: str = "reject") -> list[float]:
    await one_run(argv, env)  # warm the page cache
    times = []
    for _ in range(runs):
        elapsed, verdict = await one_run(argv, env)
        assert verdict == expect, verdict
        times.append(elapsed * 1000)
    return sorted(times)


def inside(chroot: Path | None, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """argv and environment running ``argv`` with ``env``, in ``chroot`` when one is given."""
    if chroot is None:
        return argv, dict(os.environ, **env)
    chroot_bin = shutil.which("chroot") or "/usr/sbin/chroot"
    return [chroot_bin, str(chroot), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv], {}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--chroot", type=Path, help="run /opt/dncgate/bin/dncgate-agi inside this chroot")
    args = parser.parse_args()
    chroot: Path | None = args.chroot
    bin_dir = "/opt/dncgate/bin" if chroot else str(Path(sys.executable).parent)
    with tempfile.TemporaryDirectory(dir=(chroot / "tmp") if chroot else None) as tmp:
        db = Path(tmp) / "agi.sqlite3"
        store = SqliteListStore(db)
        await store.replace_list("national", [12015550123])
        seen_db = "/" + str(db.relative_to(chroot)) if chroot else str(db)
        env = {"DNCGATE_STORE__PATH": seen_db, "DNCGATE_TENANTS__DEFAULT__REGION": "US",
               "DNCGATE_LOG_LEVEL": "warning"}
        os.environ.pop("DNCGATE_CONFIG", None)
        floor = await measure(*inside(chroot, [f"{bin_dir}/python", "-c", "pass"], {}), args.runs, expect="")
        # Fast path: a gate (the same /check handler, on the same store) is up: dncgate-agi relays.
        try:
            async with check_server(store) as server:
                relay = dict(env, DNCGATE_AGI_RELAY=f"127.0.0.1:{server.port}")
                relayed = await measure(*inside(chroot, [f"{bin_dir}/dncgate-agi"], relay), args.runs)
        finally:
            await store.close()
        # Slow path: no gate to relay to: the decision is made in the dncgate-agi process.
        alone = await measure(*inside(chroot, [f"{bin_dir}/dncgate-agi"], dict(env, DNCGATE_AGI_RELAY="off")),
                              args.runs)
    where = f"inside {chroot}" if chroot else "on the host"
    print(f"classic AGI start-to-verdict {where}, {args.runs} runs each (target <= 80 ms):")
    print(f"  {'':<34} {'p50':>8} {'p90':>8} {'max':>8}   p50 over the baseline")
    for label, times in (("baseline: python -c pass (to exit)", floor), ("relayed to dncgate serve", relayed),
                         ("in-process (no gate running)", alone)):
        p50 = statistics.median(times)
        extra = "" if times is floor else f"+{p50 - statistics.median(floor):.1f} ms"
        print(f"  {label:<34} {p50:7.1f}  {times[int(len(times) * 0.9)]:7.1f}  {times[-1]:7.1f}   {extra}")


if __name__ == "__main__":
    with open(os.devnull, "w") as nowhere:  # the bench's own gate logs nowhere
        configure("warning", nowhere)
        asyncio.run(main())
