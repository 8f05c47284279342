"""Fixtures of the AMI tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.ami.ami_helpers import FakeAmi


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()
