"""Asterisk AGI protocol layer: sans-IO codec, FastAGI server, classic-AGI (stdin/stdout) runner."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dncgate.agi.codec import AgiDecoder, AgiReply, AgiRequest, HangupNotice
    from dncgate.agi.commands import MAX_COMMAND_BYTES, quote
    from dncgate.agi.errors import (
        AgiCommandError,
        AgiConnectionLost,
        AgiDeadChannel,
        AgiEncodingError,
        AgiError,
        AgiHangup,
        AgiInvalidCommand,
        AgiLimitExceeded,
        AgiProtocolError,
        AgiTimeout,
        AgiUsageError,
    )
    from dncgate.agi.limits import AgiLimits
    from dncgate.agi.server import DEFAULT_HOST, DEFAULT_PORT, AgiServer
    from dncgate.agi.session import AgiHandler, AgiSession, ByteReader, ByteWriter, SessionOutcome, run_session
    from dncgate.agi.stdio import open_stdio_streams, run_stdio_session

# Imported on first use (PEP 562): classic AGI starts one process per call, and must not pay for
# the FastAGI server's imports it never uses.
_EXPORTS = {
    "AgiCommandError": "dncgate.agi.errors",
    "AgiConnectionLost": "dncgate.agi.errors",
    "AgiDeadChannel": "dncgate.agi.errors",
    "AgiDecoder": "dncgate.agi.codec",
    "AgiEncodingError": "dncgate.agi.errors",
    "AgiError": "dncgate.agi.errors",
    "AgiHandler": "dncgate.agi.session",
    "AgiHangup": "dncgate.agi.errors",
    "AgiInvalidCommand": "dncgate.agi.errors",
    "AgiLimitExceeded": "dncgate.agi.errors",
    "AgiLimits": "dncgate.agi.limits",
    "AgiProtocolError": "dncgate.agi.errors",
    "AgiReply": "dncgate.agi.codec",
    "AgiRequest": "dncgate.agi.codec",
    "AgiServer": "dncgate.agi.server",
    "AgiSession": "dncgate.agi.session",
    "AgiTimeout": "dncgate.agi.errors",
    "AgiUsageError": "dncgate.agi.errors",
    "ByteReader": "dncgate.agi.session",
    "ByteWriter": "dncgate.agi.session",
    "DEFAULT_HOST": "dncgate.agi.server",
    "DEFAULT_PORT": "dncgate.agi.server",
    "HangupNotice": "dncgate.agi.codec",
    "MAX_COMMAND_BYTES": "dncgate.agi.commands",
    "SessionOutcome": "dncgate.agi.session",
    "open_stdio_streams": "dncgate.agi.stdio",
    "quote": "dncgate.agi.commands",
    "run_session": "dncgate.agi.session",
    "run_stdio_session": "dncgate.agi.stdio",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dncgate.agi' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_COMMAND_BYTES",
    "AgiCommandError",
    "AgiConnectionLost",
    "AgiDeadChannel",
    "AgiDecoder",
    "AgiEncodingError",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiInvalidCommand",
    "AgiLimitExceeded",
    "AgiLimits",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "AgiServer",
    "AgiSession",
    "AgiTimeout",
    "AgiUsageError",
    "ByteReader",
    "ByteWriter",
    "HangupNotice",
    "SessionOutcome",
    "open_stdio_streams",
    "quote",
    "run_session",
    "run_stdio_session",
]
