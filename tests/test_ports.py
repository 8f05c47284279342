"""The suite's port pool: concurrent calls get distinct, bindable ports outside the ephemeral range."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import ports
from tests.ports import ASTERISK_RTP_END, ASTERISK_RTP_START, LOOPBACK, PortPool, PortPoolExhausted


def test_concurrent_takers_never_share_a_port() -> None:
    pool = PortPool(12_000, 12_999)
    with ThreadPoolExecutor(max_workers=8) as workers:
        bases = list(workers.map(lambda _: pool.take(4), range(100)))
    taken = [p for base in bases for p in range(base, base + 4)]
    assert len(taken) == len(set(taken)) == 400
    assert all(base % 2 == 0 and base >= 12_000 and base + 3 <= 12_999 for base in bases)


def test_a_block_with_a_bound_port_is_skipped() -> None:
    pool = PortPool(13_000, 13_099)
    first = pool.take(4)
    busy = first + 4 + (first % 2)  # where the next block would start
    if busy + 3 > 13_099:
        busy = 13_000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind((LOOPBACK, busy + 2))  # the video port of the next block
        base = pool.take(4)
    assert not base <= busy + 2 < base + 4


def test_pool_stays_below_asterisk_rtp_and_ephemeral_ports() -> None:
    low, _high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    base = PortPool().take(4)
    assert base + 3 < ASTERISK_RTP_START <= ASTERISK_RTP_END < low


def test_exhausted_pool_says_so() -> None:
    pool = PortPool(14_000, 14_070)
    holders = []
    try:
        for port in range(14_000, 14_071):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                sock.close()
                continue
            holders.append(sock)
        with pytest.raises(PortPoolExhausted):
            pool.take(2)
    finally:
        for sock in holders:
            sock.close()


def test_bound_udp_socket_skips_a_port_taken_after_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        taken = int(squatter.getsockname()[1])
        handed = iter([taken])
        real_take = ports.POOL.take
        monkeypatch.setattr(ports.POOL, "take", lambda count=1: next(handed, None) or real_take(count))
        with ports.bound_udp_socket() as sock:
            port = int(sock.getsockname()[1])
    assert port != taken
    assert ports.POOL_START <= port <= ports.POOL_END
