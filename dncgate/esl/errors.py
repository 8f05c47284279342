"""Typed exceptions for the FreeSWITCH event-socket layer.

Everything the ESL code raises on purpose derives from :class:`EslError`, so a
session's error boundary can tell "the peer spoke garbage" from "our handler has
a bug" without string matching. ``EslError`` is a :class:`dncgate.errors.SwitchError`; the
protocol errors are also ``RemoteProtocolError`` and the encoding error a ``LocalProtocolError``.
"""

from __future__ import annotations

from dncgate.errors import LocalProtocolError, RemoteProtocolError, SwitchError, SwitchRefused


class EslError(SwitchError):
    """Base class for every error raised by :mod:`dncgate.esl`."""


class EslProtocolError(EslError, RemoteProtocolError):
    """The peer sent bytes that are not valid event-socket protocol."""


class MalformedHeaderError(EslProtocolError):
    """A header line is not ``Name: value`` or the name is not a token."""


class InvalidContentLengthError(EslProtocolError):
    """``Content-Length`` is not a non-negative decimal integer."""


class InvalidBodyError(EslProtocolError):
    """A body that must be structured (event JSON, event-plain) is not."""


class LimitExceededError(EslProtocolError):
    """A configured size limit was exceeded (line, header count, body)."""

    def __init__(self, limit: str, value: int, maximum: int) -> None:
        super().__init__(f"{limit} {value} exceeds limit {maximum}")
        self.limit = limit
        self.value = value
        self.maximum = maximum


class IncompleteMessageError(EslProtocolError):
    """The stream ended in the middle of a message (truncated headers or body)."""


class UnexpectedMessageError(EslProtocolError):
    """A well-formed message arrived that the dialogue did not allow here."""


class EslConnectionClosed(EslError):
    """The peer closed the connection (or sent a disconnect-notice) while we waited."""


class EslTimeoutError(EslError, TimeoutError):
    """A deadline expired while waiting for the peer."""


class CommandError(EslError, SwitchRefused):
    """FreeSWITCH answered a command with ``-ERR ...``."""

    @property
    def reply_text(self) -> str:
        """The ``Reply-Text`` FreeSWITCH answered."""
        return self.reply


class AuthError(CommandError):
    """The inbound ``auth`` command was refused (``-ERR invalid``)."""


class AccessDeniedError(EslError):
    """FreeSWITCH sent ``text/rude-rejection`` (ACL refused our address)."""


class CommandEncodingError(EslError, LocalProtocolError, ValueError):
    """A command argument cannot be encoded safely (e.g. contains a newline)."""
