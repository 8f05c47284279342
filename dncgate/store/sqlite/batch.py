"""Reads from the event loop run on the reader's thread in batches: one thread hop for many lookups.

Each ``facts()`` used to be one executor job: a submit, a wake-up of the reader thread, the GIL
handed over and back, and a wake-up of the loop (its self-pipe) for a lookup that takes a few
microseconds of SQLite. :class:`ReadBatcher` keeps one job running at a time: the calls that arrive
while it reads wait for the next job, which reads them all (at most ``max_batch``), one after another,
each on its own (one statement, one read transaction, its own result or exception). A call on an
idle batcher starts a job at once, so a lone call waits for nothing. A caller that gives up (the
gate's deadline) is skipped if its read has not started, and its result dropped if it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar, cast

__all__ = ["ReadBatcher"]

A = TypeVar("A")
R = TypeVar("R")
Waiting = list[tuple[A, "asyncio.Future[R]"]]
Results = list[tuple[R | None, BaseException | None]]  # per read: its result, or what it raised


class ReadBatcher(Generic[A, R]):
    """``await batcher(args)``: ``read(args)`` on ``pool``'s thread, batched with the calls around it."""

    def __init__(self, pool: ThreadPoolExecutor, read: Callable[[A], R], *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("ReadBatcher.max_batch must be >= 1")
        self._pool = pool
        self._read = read
        self._max_batch = max_batch
        self._waiting: list[tuple[A, asyncio.Future[R]]] = []
        self._reading = False  # a job is on the pool (only the loop's thread reads or writes this)

    async def __call__(self, args: A) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((args, future))
        if not self._reading:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = [(args, future) for args, future in self._waiting[: self._max_batch] if not future.done()]
        del self._waiting[: self._max_batch]
        if not batch:
            if self._waiting:
                self._start(loop)
            return
        try:
            job = self._pool.submit(self._read_all, [args for args, _ in batch])
        except RuntimeError as exc:  # the pool was shut down: the store is closed
            for _, future in batch + self._waiting:
                if not future.done():
                    future.set_exception(RuntimeError(str(exc)))
            self._waiting.clear()
            return
        self._reading = True
        job.add_done_callback(lambda done: _call_in(loop, self._finished, loop, batch, done))

    def _read_all(self, batch: list[A]) -> Results[R]:
        """On the pool's thread: each read on its own, its result or its exception."""
        results: Results[R] = []
        for args in batch:
            try:
                results.append((self._read(args), None))
            except Exception as exc:  # noqa: BLE001 -- handed to that read's caller, as an executor job would
                results.append((None, exc))
        return results

    def _finished(self, loop: asyncio.AbstractEventLoop, batch: Waiting[A, R], job: ThreadFuture[Results[R]]) -> None:
        self._reading = False
        failed = RuntimeError("sqlite read cancelled") if job.cancelled() else job.exception()
        results: Results[R] = job.result() if failed is None else [(None, failed)] * len(batch)
        for (_, future), (result, error) in zip(batch, results, strict=True):
            if future.done():  # its caller gave up
                continue
            if error is None:
                future.set_result(cast(R, result))
            else:  # a failed job: a fresh exception for each caller (each raises its own)
                future.set_exception(error if failed is None else RuntimeError(str(failed)))
        if self._waiting:
            self._start(loop)


def _call_in(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> None:
    """From the pool's thread: ``callback`` on the loop's (not once the loop is closed: nobody waits)."""
    if not loop.is_closed():
        loop.call_soon_threadsafe(callback, *args)
