"""Exception tree of the AGI layer.

::

    AgiError (a dncgate.errors.SwitchError)
    ├── AgiProtocolError          the peer sent something that is not AGI (a RemoteProtocolError)
    │   └── AgiLimitExceeded      a line / header block exceeded a configured limit
    ├── AgiConnectionLost         EOF or a socket error before the exchange finished
    ├── AgiTimeout                a read (header or command reply) missed its deadline
    ├── AgiHangup                 the channel is gone (Asterisk answered 511)
    ├── AgiCommandError           Asterisk answered a command with a non-200 code
    │   ├── AgiInvalidCommand     510 Invalid or unknown command
    │   ├── AgiDeadChannel        511 Command Not Permitted on a dead channel ... (also an AgiHangup)
    │   └── AgiUsageError         520 Invalid command syntax (carries the usage text)
    └── AgiEncodingError          we refused to encode a command (a LocalProtocolError, a ValueError)

A bad peer shows up as AgiProtocolError, AgiConnectionLost or AgiTimeout; the server's
per-session error boundary turns each into one warning log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dncgate.errors import LocalProtocolError, RemoteProtocolError, SwitchError

if TYPE_CHECKING:
    from dncgate.agi.codec import AgiReply

__all__ = [
    "AgiCommandError",
    "AgiConnectionLost",
    "AgiDeadChannel",
    "AgiEncodingError",
    "AgiError",
    "AgiHangup",
    "AgiInvalidCommand",
    "AgiLimitExceeded",
    "AgiProtocolError",
    "AgiTimeout",
    "AgiUsageError",
]


class AgiError(SwitchError):
    """Base class of every error raised by dncgate.agi."""


class AgiProtocolError(AgiError, RemoteProtocolError):
    """The peer sent bytes that do not follow the AGI protocol."""


class AgiLimitExceeded(AgiProtocolError):
    """A configured size limit was exceeded (line length, header lines, header bytes, usage lines)."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class AgiConnectionLost(AgiError):
    """The peer closed the connection (or it broke) while we still needed it."""


class AgiTimeout(AgiError, TimeoutError):
    """A read did not complete before its deadline."""

    def __init__(self, message: str, *, phase: str, timeout: float) -> None:
        super().__init__(message)
        self.phase = phase
        self.timeout = timeout


class AgiHangup(AgiError):
    """The channel has hung up and the command cannot be carried out."""


class AgiCommandError(AgiError):
    """Asterisk answered a command with a non-200 status code."""

    def __init__(self, reply: AgiReply, command: str = "") -> None:
        super().__init__(f"{command!r} -> {reply.code} {reply.text}" if command else f"{reply.code} {reply.text}")
        self.reply = reply
        self.code = reply.code
        self.command = command


class AgiInvalidCommand(AgiCommandError):
    """510 Invalid or unknown command."""


class AgiDeadChannel(AgiCommandError, AgiHangup):
    """511 Command Not Permitted on a dead channel or intercept routine."""


class AgiUsageError(AgiCommandError):
    """520 Invalid command syntax; ``usage`` holds the usage text Asterisk sent."""

    @property
    def usage(self) -> str:
        return self.reply.usage


class AgiEncodingError(AgiError, LocalProtocolError, ValueError):
    """A command argument cannot be encoded safely (e.g. a variable name with a newline)."""
