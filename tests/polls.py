"""Bounded polling for the tests: a condition checked a fixed number of times, never a time bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLLS = 1000
INTERVAL = 0.01  # so about 10 s at most on an idle machine; more polls, never a failure, on a busy one


async def poll_until(condition: Callable[[], bool], what: str = "condition", polls: int = POLLS) -> None:
    """Return once ``condition()`` holds; fail after ``polls`` checks ``INTERVAL`` apart."""
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(INTERVAL)
    raise AssertionError(f"{what}: not reached in {polls} polls")
