"""Asterisk AGI protocol layer: sans-IO codec, FastAGI server, classic-AGI (stdin/stdout) runner."""

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
