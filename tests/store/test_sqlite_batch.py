"""ReadBatcher (the SQLite store's facts() reads): calls that arrive while a read runs share the next
job; each caller gets its own result or exception; a caller that gave up is skipped; a closed pool
fails the callers; the store's facts() through it equal the store's one-by-one answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dncgate.store.errors import StoreUnavailable
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.batch import ReadBatcher


class Reads:
    """A read that records each job's size; ``gate`` holds the first job until the test lets it go."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.seen: list[int] = []

    def __call__(self, n: int) -> int:
        if not self.seen:
            self.gate.wait(5)
        self.seen.append(n)
        if n < 0:
            raise ValueError(f"negative {n}")
        return n * 10


class CountingPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(1)
        self.jobs = 0

    def submit(self, *args: Any, **kwargs: Any) -> Future[Any]:
        self.jobs += 1
        return super().submit(*args, **kwargs)


@pytest.fixture
def pool() -> Iterator[CountingPool]:
    made = CountingPool()
    yield made
    made.shutdown(wait=True)


async def test_calls_during_a_read_share_the_next_job_and_each_gets_its_own_answer(pool: CountingPool) -> None:
    reads = Reads()
    batcher = ReadBatcher(pool, reads, max_batch=8)
    first = asyncio.ensure_future(batcher(1))
    await asyncio.sleep(0.05)  # the first job is on the thread, held
    rest = [asyncio.ensure_future(batcher(n)) for n in (2, -3, 4, 5, 6, 7, 8, 9, 10, 11)]
    await asyncio.sleep(0)
    reads.gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert results[:2] == [10, 20]
    assert isinstance(results[2], ValueError)
    assert str(results[2]) == "negative -3"
    assert results[3:] == [40, 50, 60, 70, 80, 90, 100, 110]
    assert reads.seen == [1, 2, -3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert pool.jobs == 3  # 1 alone, then 8 (max_batch), then the last 2


async def test_a_caller_that_gave_up_before_its_read_is_skipped(pool: ThreadPoolExecutor) -> None:
    reads = Reads()
    batcher = ReadBatcher(pool, reads)
    first = asyncio.ensure_future(batcher(1))
    await asyncio.sleep(0.05)
    gone = asyncio.ensure_future(batcher(2))
    kept = asyncio.ensure_future(batcher(3))
    await asyncio.sleep(0)
    gone.cancel()
    reads.gate.set()
    assert await first == 10
    assert await kept == 30
    assert gone.cancelled()
    assert reads.seen == [1, 3]


async def test_a_shut_down_pool_fails_the_callers(pool: ThreadPoolExecutor) -> None:
    batcher = ReadBatcher(pool, lambda n: n)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        await batcher(1)


async def test_store_facts_concurrent_equal_one_by_one_and_fail_after_close(tmp_path: Path) -> None:
    store = SqliteListStore(tmp_path / "s.sqlite3")
    await store.replace_list("national", [12015550100 + i for i in range(0, 100, 3)])
    await store.replace_list("tenant:acme", [12015550100 + i for i in range(0, 100, 5)])
    numbers = [12015550100 + i for i in range(100)]
    alone = [await store.facts("acme", n, originators=("account:a",)) for n in numbers]
    together = await asyncio.gather(*(store.facts("acme", n, originators=("account:a",)) for n in numbers))
    assert list(together) == alone
    assert sum(f.national is not None for f in alone) == 34
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.facts("acme", numbers[0])
