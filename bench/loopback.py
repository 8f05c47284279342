"""Loopback helpers the CPU benches share: a free port, a throwaway redis-server, listed numbers."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path


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
