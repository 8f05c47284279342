"""The one exception tree: everything dncgate raises on purpose derives from :class:`DncgateError`.

::

    DncgateError
    ├── ConfigError              a configuration value that cannot be used (key and source named)
    ├── StoreError               a store could not answer, or answered nonsense (store/errors.py)
    ├── ListError                list files, manifests, sources, sync, loads, registrations (lists/)
    ├── ConsentError             the consent ledger
    │   ├── LedgerError          an event that cannot be recorded as given (also a ValueError)
    │   └── ExportError          an export that does not prove itself complete (consent/export.py)
    ├── EnforcementError         enforcement cases, complaints, notices (enforcement/)
    │   └── CaseError            a case action that cannot be taken as asked (also a ValueError)
    ├── ApiError                 an HTTP API request answered with an error (api/errors.py)
    ├── MessageError             a message that cannot be checked as given (also a ValueError; messages/)
    ├── SwitchError              talking to a switch: AGI, the event socket, AMI, the IVR's caller
    │   └── SwitchRefused        ... which answered a command with an error (ESL -ERR, AMI Response: Error)
    └── ProtocolError            bytes on a wire that break its protocol
        ├── LocalProtocolError   ... that we refused to send (a CR/LF in a command argument)
        └── RemoteProtocolError  ... that the peer sent

A door's errors are both: ``AgiProtocolError`` is an ``AgiError`` (a ``SwitchError``) and a
``RemoteProtocolError``; ``AgiEncodingError`` an ``AgiError`` and a ``LocalProtocolError``.

This module is the bottom room: it imports nothing from dncgate, so any module (classic AGI's
fast path included) can import it for nothing.
"""

from __future__ import annotations

__all__ = [
    "CaseError",
    "ConfigError",
    "ConsentError",
    "DncgateError",
    "EnforcementError",
    "LedgerError",
    "ListError",
    "LocalProtocolError",
    "MessageError",
    "ProtocolError",
    "RemoteProtocolError",
    "StoreError",
    "SwitchError",
    "SwitchRefused",
]


class DncgateError(Exception):
    """Base class of every error dncgate raises on purpose."""


class ConfigError(DncgateError):
    """A configuration that cannot be used. ``problems``: one line per problem, each naming its
    source (the file, or the environment variable), the key path and what is wrong
    (``dncgate.settings`` collects them all before raising)."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(DncgateError):
    """Base class for everything a store raises."""


class ListError(DncgateError):
    """A list file, manifest, source, sync, load or registration that cannot be used as given."""


class ConsentError(DncgateError):
    """Base class of the consent ledger's errors."""


class LedgerError(ConsentError, ValueError):
    """An event that cannot be recorded as given (the message says which field and why)."""


class EnforcementError(DncgateError):
    """Base class of enforcement's errors (cases, complaints, notices)."""


class CaseError(EnforcementError, ValueError):
    """A case action that cannot be taken as asked (the message says why): a transition the case's
    state does not allow, a suspension inside the notice period, an appeal on a closed case."""


class MessageError(DncgateError, ValueError):
    """A message that cannot be checked as given: no recipient, a body that is not text or too long,
    a sender that is no port (the message says which part and why)."""


class SwitchError(DncgateError):
    """Talking to a switch failed: an AGI session, an event-socket connection, AMI, a caller gone."""


class SwitchRefused(SwitchError):
    """The switch answered a command with an error: ``command`` is what was asked (an event-socket
    command, an AMI action's name), ``reply`` the switch's text (``Reply-Text``, AMI's ``Message``)."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command}: {reply}")
        self.command = command
        self.reply = reply


class ProtocolError(DncgateError):
    """Bytes on a wire that do not follow its protocol."""


class LocalProtocolError(ProtocolError):
    """We refused to send something the protocol cannot carry (e.g. a newline inside an argument)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not follow the protocol."""
