"""What the CPU benches share: a free port, a throwaway redis-server, listed numbers, the gate's loop."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

from dncgate import logs


def numbers(count: int, seed: int = 7) -> list[int]:
    """``count`` (about: duplicates drop) distinct NANP numbers, sorted, the same for a seed."""
    rng = random.Random(seed)
    return sorted({int(f"1201{rng.randrange(2_000_000, 9_999_999)}") for _ in range(count)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """A redis-server on a free 127.0.0.1 port (no persistence), and its URL; None without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--set-max-intset-entries", "1000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    proc.wait(timeout=5)
    return None


def add_gate_options(parser: argparse.ArgumentParser, peer: str) -> None:
    """``--no-redis`` and ``--event-loop`` (the gate's loop; the fake ``peer`` stays on asyncio's)."""
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help=f"the gate's loop, as [serve] event_loop (the fake {peer} stays on asyncio's)")


def run_gate_bench(args: argparse.Namespace, header: str,
                   main: Callable[[Path, str | None], Coroutine[Any, Any, None]]) -> None:
    """``main(tmp dir, redis URL or None)`` on the gate's loop, logging JSON to /dev/null, a
    redis-server of its own unless ``--no-redis``; ``header`` printed first."""
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory() as tmp:
        logs.configure("info", stream=devnull)
        print(f"{header}, gate on {args.event_loop}")
        redis = None if args.no_redis else start_redis(Path(tmp))
        try:
            run = uvloop.run if args.event_loop == "uvloop" else asyncio.run
            run(main(Path(tmp), redis[1] if redis else None))
        finally:
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(timeout=5)
