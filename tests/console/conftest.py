"""One real serve per test module (tests/console/console_gate.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.console_gate import ConsoleGate


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleGate]:
    started = ConsoleGate(Path(tmp_path_factory.mktemp("console-gate"))).start()
    yield started
    started.stop()
