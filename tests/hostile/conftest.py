"""A ``dncgate serve`` of its own for each hostile test: FastAGI, the event socket and HTTP (with
the API) on loopback, small caps, and an open-file limit of OPEN_FILES (``ulimit -n``), so that a
flood that took every descriptor would show. The session Redis holds the lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import STANDARD_LISTS, GateProcess, load_lists
from tests.e2e.lab import LabError
from tests.hostile.peers import Answers, Caps, doors_answer, hostile_gate

OPEN_FILES = 320  # the caps (64 + 2 x 32 + 64) and the 64 in reserve fit; a flood of 400 would not


@dataclass
class Hostile:
    gate: GateProcess
    esl_port: int

    @property
    def pid(self) -> int:
        assert self.gate.process is not None
        return self.gate.process.pid

    async def answers(self, *, http: bool = True) -> Answers:
        return await doors_answer(self.gate.agi_port, self.esl_port, self.gate.http_port, http=http)

    def events(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.gate.log_events() if e.get("event") == name]

    def log_text(self) -> str:
        return self.gate.log_path.read_text(errors="replace")


def start_hostile(workdir: Path, redis: RedisServer, open_files: int | None = OPEN_FILES,
                  caps: Caps | None = None) -> Hostile:
    load_lists(redis.url, STANDARD_LISTS)
    gate, esl_port = hostile_gate(workdir, redis.url, open_files=open_files, caps=caps)
    try:
        gate.start()
    except LabError as exc:
        pytest.fail(f"the gate did not start: {exc}", pytrace=False)
    return Hostile(gate, esl_port)


@pytest.fixture
def hostile(redis_server: RedisServer, tmp_path: Path) -> Iterator[Hostile]:
    running = start_hostile(tmp_path / "gate", redis_server)
    try:
        yield running
    finally:
        running.gate.stop()


@pytest.fixture(scope="module")
def shared_hostile(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """One serve for a module whose peers leave it as they found it (each test checks the doors)."""
    running = start_hostile(tmp_path_factory.mktemp("hostile"), redis_server)
    try:
        yield running
    finally:
        running.gate.stop()
