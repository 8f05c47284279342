"""``serve`` runs on ``[serve] event_loop`` (uvloop by default), every other command on asyncio's loop."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import uvloop

from dncgate.cli import _event_loop, parser
from dncgate.settings import ConfigError, Settings, load


def _settings(text: str = "") -> Settings:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dncgate.toml"
        path.write_text(text)
        return load(path, environ={})


def test_serve_runs_on_uvloop_by_default_and_on_asyncio_when_asked() -> None:
    serve = parser().parse_args(["serve"])
    assert _event_loop(serve, _settings()) is uvloop.run
    assert _event_loop(serve, _settings('[serve]\nevent_loop = "asyncio"\n')) is asyncio.run


def test_every_other_command_runs_on_asyncio() -> None:
    check = parser().parse_args(["check", "+12015550123"])
    assert _event_loop(check, _settings()) is asyncio.run


def test_an_unknown_event_loop_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="event_loop"):
        _settings('[serve]\nevent_loop = "tokio"\n')
    assert _settings().serve.event_loop == "uvloop"
