"""The replica at national size (``bench/replica.py --national``): build, memory and lookups per list size.

For each size N: N clustered CN mobiles (operator 10^4 blocks at densities 2-40 %, like
bench/synthetic.py, but drawn as arrays so 253M numbers cost 2 GiB, not a Python set) into its own
redis-server through ``RedisListStore.replace_list``; then, per code under test (this worktree's
venv, and ``--before``'s), alternately:

- gate process A (bench/replica_gate.py: open_app with ``[replica] enabled``) builds the compact file
  from the store: seconds to ready, peak RSS (ru_maxrss), the file's size;
- gate process B on the same directory maps A's file;
- both run facts() and Gate.check on the same probes (half listed, half not): CPU and wall per call,
  and the compact file's lookup alone (CPU ns);
- Rss and Pss (/proc/PID/smaps_rollup; Pss counts the shared file once across both) after the lookups
  and after each touched every page of the file (the whole list resident).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import time
from array import array
from itertools import repeat
from operator import add
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.store_redis import start_redis
from bench.synthetic import CN_MOBILE, misses
from dncgate.store.redis import RedisListStore, RedisSettings

_DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.4)
_GATE = Path(__file__).resolve().with_name("replica_gate.py")


def clustered_array(count: int, seed: int = 2026) -> array[int]:
    """``count`` distinct clustered CN mobiles, ascending, as an ``array('q')``: operator 10^4 blocks
    drawn at random, each filled at a random density with one of 64 member patterns per density."""
    rng = random.Random(seed)
    patterns = [array("q", sorted(rng.sample(range(10_000), int(10_000 * d)))) for d in _DENSITIES for _ in range(64)]
    mean = sum(len(p) for p in patterns) / len(patterns)
    needed = int(count / mean * 1.2) + 1
    pool = len(CN_MOBILE) * 10_000
    if needed > pool:
        raise SystemExit(f"{count:,} numbers need ~{needed:,} blocks of 10^4, only {pool:,} exist")
    blocks = sorted(int(CN_MOBILE[b // 10_000] + f"{b % 10_000:04d}") for b in rng.sample(range(pool), needed))
    numbers = array("q")
    for block in blocks:
        pattern = patterns[rng.randrange(len(patterns))]
        numbers.extend(map(add, pattern[: count - len(numbers)], repeat(block * 10_000)))
        if len(numbers) >= count:
            break
    return numbers


def _smaps(pid: int) -> dict[str, float]:
    """Rss and Pss of a process, MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            found[name] = int(rest.split()[0]) / 1024
    return found


class Gate:
    """One bench/replica_gate.py process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, python: Path, cwd: Path, url: str, replica_dir: Path, probes: Path) -> tuple[Gate, Any]:
        process = await asyncio.create_subprocess_exec(
            str(python), str(_GATE), "--url", url, "--dir", str(replica_dir), "--probes", str(probes),
            cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        gate = cls(process)
        return gate, await gate.reply()

    async def reply(self) -> Any:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise SystemExit(f"gate process {self.process.pid} exited ({await self.process.wait()})")
        return json.loads(line)

    async def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.reply()

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"exit\n")
        await self.process.stdin.drain()
        await self.process.wait()


async def _measure(label: str, python: Path, cwd: Path, url: str, workdir: Path, probes: Path) -> dict[str, Any]:
    replica_dir = workdir / f"replica-{label}"
    first, ready = await Gate.start(python, cwd, url, replica_dir, probes)
    second, mapped = await Gate.start(python, cwd, url, replica_dir, probes)
    try:
        row: dict[str, Any] = {"ready": ready, "second_ready": mapped}
        row["lookups"] = [await first.ask("lookups"), await second.ask("lookups")]
        row["contains"] = [await first.ask("contains"), await second.ask("contains")]
        row["after_lookups"] = [_smaps(first.process.pid), _smaps(second.process.pid)]
        await first.ask("touch")
        row["one_touched"] = _smaps(first.process.pid)
        await second.ask("touch")
        row["both_touched"] = [_smaps(first.process.pid), _smaps(second.process.pid)]
    finally:
        await first.stop()
        await second.stop()
        shutil.rmtree(replica_dir, ignore_errors=True)
    return row


def _print(size: int, label: str, row: dict[str, Any]) -> None:
    ready, look = row["ready"], row["lookups"]
    lookups = row["after_lookups"]
    both = row["both_touched"]
    print(f"| {size:,} | {label} | {ready['seconds']:.1f} | {ready['peak_rss_mib']:.0f} "
          f"(base {ready['baseline_rss_mib']:.0f}) | {ready['file_bytes'] / 2**20:.0f} "
          f"({ready['file_bytes'] / max(1, ready['numbers']):.2f} B/n) | {row['second_ready']['seconds']:.1f} | "
          f"{lookups[0]['Rss']:.0f}/{lookups[0]['Pss']:.0f} | {row['one_touched']['Rss']:.0f}/"
          f"{row['one_touched']['Pss']:.0f} | {both[0]['Pss'] + both[1]['Pss']:.0f} "
          f"({both[0]['Rss']:.0f}+{both[1]['Rss']:.0f} Rss) | "
          f"{look[0]['facts_cpu_us']:.1f} / {look[1]['facts_cpu_us']:.1f} | {look[0]['facts_p50_us']:.1f} / "
          f"{look[0]['facts_p99_us']:.1f} | {look[0]['check_cpu_us']:.1f} / {look[1]['check_cpu_us']:.1f} | "
          f"{row['contains'][0]['contains_cpu_ns']:.0f} / {row['contains'][1]['contains_cpu_ns']:.0f} |",
          flush=True)


async def national(sizes: list[int], lookups: int, before: Path | None, workdir: Path | None) -> None:
    here = Path(__file__).resolve().parent.parent
    codes = [("after", here / ".venv/bin/python", here)]
    if before is not None:
        codes.append(("before", before.resolve() / ".venv/bin/python", before.resolve()))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp)
        process, url = start_redis(work)
        try:
            print("| numbers | code | build s | build peak RSS MiB | file MiB | 2nd process ready s | "
                  "Rss/Pss after lookups MiB | Rss/Pss whole file MiB | Pss of 2 processes, whole file MiB | "
                  "facts CPU us (A / B) | facts p50 / p99 us | Gate.check CPU us (A / B) | file lookup ns (A / B) |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
            for index, size in enumerate(sizes):
                probes = await _load(url, size, lookups, work)
                order = codes if index % 2 == 0 else codes[::-1]
                for label, python, cwd in order:
                    _print(size, label, await _measure(label, python, cwd, url, work, probes))
        finally:
            process.terminate()
            process.wait(30)


async def _load(url: str, size: int, lookups: int, work: Path) -> Path:
    """A fresh Redis with the national list of ``size`` numbers; returns the probes' file."""
    client = aioredis.from_url(url)
    await client.flushall()
    await client.aclose()
    started = time.perf_counter()
    numbers = clustered_array(size)
    made = time.perf_counter() - started
    rng = random.Random(5)
    probes = array("q", [numbers[i] for i in rng.sample(range(len(numbers)), lookups // 2)] + misses(lookups // 2))
    store = await RedisListStore.connect(RedisSettings(url=url))
    started = time.perf_counter()
    await store.replace_list("national", numbers)
    await store.close()
    client = aioredis.from_url(url)
    used = int((await client.info("memory"))["used_memory"])
    await client.aclose()
    print(f"| {size:,} numbers: drawn in {made:.1f} s, replace_list {time.perf_counter() - started:.1f} s, "
          f"Redis used_memory {used / 2**20:.0f} MiB |", flush=True)
    del numbers
    path = work / f"probes-{size}"
    path.write_bytes(probes.tobytes())
    return path
