"""The log stream: each JSON line reaches the file at once (a killed gate keeps its last lines)."""

from __future__ import annotations

import json
from pathlib import Path

import structlog

from dncgate.logs import configure


def test_each_line_is_flushed_to_a_block_buffered_file(tmp_path: Path) -> None:
    path = tmp_path / "gate.log"
    with path.open("w", buffering=1 << 20) as stream:  # a file, as `serve 2>>gate.log` gives
        configure("info", stream=stream)
        structlog.get_logger("test").info("decision.allowed", decision_id="d1")
        # Read before the stream is flushed or closed: what a kill -9 now would leave on disk.
        assert [json.loads(line)["decision_id"] for line in path.read_text().splitlines()] == ["d1"]
