"""The snapshot fast path over several processes: chunks out to workers, pieces back in file order.

``lists.fastlines`` spends most of a big snapshot's time in its per-chunk checks (one regular
expression of phonenumbers' validity over every line: ~0.35 us a line, 90 s of a 253M-line file).
Those checks are pure functions of a chunk's bytes, so ``pieces`` hands the chunks to a pool of
worker processes (``spawn``: no fork of a process with threads) and yields each chunk's ``Piece``
in the order read, at most ``2 * workers`` chunks in flight (memory stays bounded: ~4 MiB of text
and ~2 MiB of numbers a chunk). Workers run at a lower priority (nice +10): inside ``serve`` the
gate's calls come first. The reading process decompresses, joins the pieces and does
everything that touches its own state (bad lines, ``number_of``), so the result is the one a
single process makes. A worker that dies fails the parse (``BrokenProcessPool``, as any crash of
the parser: the sync is refused and logged, the live list stays).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

_T = TypeVar("_T")

MAX_WORKERS = 4  # beyond this the reading process (gzip, joining) is the bottleneck
PARALLEL_MIN_BYTES = 16 << 20  # a smaller file is parsed sooner than worker processes start
WORKER_NICENESS = 10  # added to a worker's nice value: calls first, the sync with what is left


def parse_workers(size: int) -> int:
    """Worker processes for a file of ``size`` bytes on disk: 1 (this process) for a small file or
    a one-core host, else one per core the process may run on, at most ``MAX_WORKERS``."""
    if size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


@contextmanager
def pieces(
    work: Callable[[bytes], _T], chunks: Iterator[bytes], workers: int,
) -> Iterator[Iterator[tuple[bytes, _T]]]:
    """``(chunk, work(chunk))`` for each chunk in order; ``workers`` > 1 runs ``work`` (a module-level
    function: it is pickled by name) in that many processes. The pool is shut down (queued chunks
    cancelled) on leaving."""
    if workers <= 1:
        yield ((chunk, work(chunk)) for chunk in chunks)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_lower_priority)
    try:
        yield _in_order(pool, work, chunks, 2 * workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _lower_priority() -> None:
    """A worker yields the cores to the gate: a sync inside ``serve`` must not delay its calls."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _in_order(
    pool: ProcessPoolExecutor, work: Callable[[bytes], _T], chunks: Iterator[bytes], in_flight: int,
) -> Iterator[tuple[bytes, _T]]:
    pending: deque[tuple[bytes, Future[_T]]] = deque()
    for chunk in chunks:
        pending.append((chunk, pool.submit(work, chunk)))
        if len(pending) >= in_flight:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()
