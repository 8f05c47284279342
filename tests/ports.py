"""Loopback ports for the suite: the servers tests start (Redis, the gate) and the e2e lab's SIPp,
Asterisk and RTP sockets, handed out so that concurrent calls never collide.

Asking the kernel for port 0 and closing the socket again ("free port") races: the kernel hands
out ephemeral ports (32768-60999 on Linux) to every outgoing connection, and SIPp's ``-mp`` binds
not one port but a block (audio ``mp``, video ``mp+2``, and their RTCP neighbours), which nobody
checked. Calls placed in parallel then occasionally died with SIPp exit 254 ("cannot bind").

So the suite takes its ports from one process-wide pool below the ephemeral range, in blocks, each
port of a block checked bindable (UDP and TCP) when it is handed out, and never hands the same
port out twice until the pool wraps. Asterisk's RTP range (see ``AsteriskLab``) lies in a
different band, so it cannot take a port the harness is about to bind.
"""

from __future__ import annotations

import secrets
import socket
import threading

LOOPBACK = "127.0.0.1"

# harness ports: SIPp signalling and media, the RTP sink, gate/AMI listeners
POOL_START = 10_000
POOL_END = 19_999
# Asterisk's RTP band (rtp.conf), also below the kernel's ephemeral range
ASTERISK_RTP_START = 20_000
ASTERISK_RTP_END = 31_999


class PortPoolExhausted(RuntimeError):
    """No bindable block was found in a whole sweep of the pool."""


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


class PortPool:
    """Hands out blocks of consecutive loopback ports, each checked free, round-robin."""

    def __init__(self, start: int = POOL_START, end: int = POOL_END) -> None:
        if end - start < 64:
            raise ValueError("port pool too small")
        self._start = start
        self._end = end
        self._lock = threading.Lock()
        # a random starting point: two test processes on one machine rarely start together
        self._cursor = start + secrets.randbelow(end - start)

    def take(self, count: int = 1) -> int:
        """The first port of ``count`` consecutive free ports; the first port is even."""
        span = self._end - self._start
        with self._lock:
            for _ in range(span // 2 + 1):
                first = self._cursor + (self._cursor % 2)
                if first + count - 1 > self._end:
                    first = self._start + (self._start % 2)
                self._cursor = first + count
                if all(_bindable(p) for p in range(first, first + count)):
                    return first
        raise PortPoolExhausted(f"no {count} free consecutive ports in {self._start}-{self._end}")


POOL = PortPool()


def port() -> int:
    """One free port, checked for UDP and TCP alike (SIP signalling, the gate, Redis, AMI)."""
    return POOL.take(1)


def bound_udp_socket(attempts: int = 20) -> socket.socket:
    """A UDP socket already bound to a pool port: no window between choosing and binding."""
    for _ in range(attempts):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((LOOPBACK, POOL.take(1)))
        except OSError:
            sock.close()  # taken in the meantime by someone outside the pool: next one
            continue
        return sock
    raise PortPoolExhausted(f"no pool port could be bound in {attempts} attempts")


def media_block() -> int:
    """The base of four free ports for SIPp's ``-mp`` (audio, audio RTCP, video, video RTCP)."""
    return POOL.take(4)
