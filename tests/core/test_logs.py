"""The log stream: each JSON line reaches the file at once (a killed gate keeps its last lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_line_has_the_keys_values_and_order_of_structlogs_own_processor_chain(tmp_path: Path) -> None:
    """logs._Render does in one call what merge_contextvars, add_log_level, TimeStamper, format_exc_info
    and JSONRenderer did one after the other: the same line (but the moment in its timestamp)."""
    chain = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    texts = []
    for name in ("ours", "structlog"):
        path = tmp_path / f"{name}.log"
        with path.open("w") as stream:
            configure("debug", stream=stream)
            if name == "structlog":
                structlog.configure(processors=chain)
            structlog.contextvars.bind_contextvars(worker=2, pid=7)
            try:
                log = structlog.get_logger("test").bind(remote="127.0.0.1:5060", worker=3)
                log.info("decision.allowed", decision_id="d1", name="é", sip_code=None)
                log.warning("gate.observer_failed", error="boom", exc_info=False)
                try:
                    raise ValueError("bad")
                except ValueError as exc:
                    log.error("agi.session.handler_error", error=str(exc), exc_info=exc)
                log.exception("door.server.session_crashed")
            finally:
                structlog.contextvars.clear_contextvars()
        lines = _lines(path)
        for line in lines:
            assert isinstance(line.pop("timestamp"), str)
        texts.append([(list(line), line) for line in lines])
    ours, theirs = texts
    assert ours == theirs
    assert ours[0][0] == ["remote", "worker", "decision_id", "name", "sip_code", "event", "pid", "level"]
    assert "ValueError: bad" in str(ours[2][1]["exception"])


def test_the_timestamp_is_datetime_isoformat_in_utc_with_z(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from dncgate import logs

    moments = (1_795_809_160_123_456_789, 1_795_809_160_000_000_999, 1_795_809_161_000_001_000, 0,
               951_782_399_999_999_000)
    for ns in moments:
        monkeypatch.setattr(logs.time, "time_ns", lambda ns=ns: ns)
        expected = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns // 1000 % 1_000_000)
        assert logs.utc_timestamp() == expected.isoformat().replace("+00:00", "Z")
