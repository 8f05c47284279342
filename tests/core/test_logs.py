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


class _Custom:
    def __repr__(self) -> str:
        return "<custom>"


def test_a_line_is_what_json_dumps_gives_values_it_cannot_encode_as_their_repr(tmp_path: Path) -> None:
    path = tmp_path / "gate.log"
    with path.open("w") as stream:
        configure("info", stream=stream)
        log = structlog.get_logger("test")
        log.info("decision.allowed", decision_id="d1", callee="+8613800138000", name="é", value=_Custom())
        log.info("decision.rejected", decision_id="d2", sip_code=607, category=None)
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert "é" in path.read_text()  # ensure_ascii=False: the text as it is
    assert {k: first[k] for k in ("event", "decision_id", "name", "value", "level")} == {
        "event": "decision.allowed", "decision_id": "d1", "name": "é", "value": "<custom>", "level": "info"}
    assert (second["sip_code"], second["category"]) == (607, None)
