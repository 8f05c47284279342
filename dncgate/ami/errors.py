"""Typed exceptions for the AMI adapter; everything raised on purpose derives from :class:`AmiError`."""

from __future__ import annotations

from dncgate.errors import LocalProtocolError, SwitchError, SwitchRefused


class AmiError(SwitchError):
    """Base class for every error raised by :mod:`dncgate.ami`."""


class AmiUnavailable(AmiError, ConnectionError):
    """No usable AMI connection: connect failed or stalled, not connected, or the client is closed."""


class AmiConnectionLost(AmiUnavailable):
    """The connection dropped while an action was waiting for its response."""


class AmiLoginError(AmiError):
    """Asterisk refused the Login action (``Response: Error`` / ``Message: Authentication failed``)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"AMI login refused: {message}")
        self.message = message


class AmiTimeout(AmiError, TimeoutError):
    """An action got no (complete) response within our deadline."""


class AmiActionError(AmiError, SwitchRefused):
    """Asterisk answered an action with ``Response: Error`` (or Fail/Failure); ``command`` is the action."""

    @property
    def message(self) -> str:
        """The ``Message`` Asterisk answered."""
        return self.reply


class AmiEncodingError(AmiError, LocalProtocolError, ValueError):
    """An action field cannot be sent safely (CR/LF would inject headers or end the action)."""
