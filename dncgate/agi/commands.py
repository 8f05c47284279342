"""Safe encoding of AGI commands.

Asterisk splits a command line into words with ``parse_args()`` (res/res_agi.c): blanks separate words,
``"`` toggles quoting, and a backslash makes the next character literal (inside or outside quotes). A
command ends at the first ``\\n``, and Asterisk reads it into an 8192-byte buffer: a longer line is cut
and **the remainder is run as a second command**. So every encoder here guarantees that

* free text (values, messages, application arguments, expressions) is always wrapped in double quotes
  with ``\\`` and ``"`` backslash-escaped, and CR, LF and NUL replaced by a blank (AGI has no way to
  carry them; NUL would silently truncate the line in C);
* identifiers (variable names, application names, file names, channel names) are emitted bare and are
  refused (:class:`AgiEncodingError`) if they are empty or contain blanks, quotes, backslashes or
  control characters;
* the finished line is at most :data:`MAX_COMMAND_BYTES` bytes of UTF-8 and contains no CR/LF/NUL, or
  :class:`AgiEncodingError` is raised before anything is written.

``SET VARIABLE`` values are not evaluated by Asterisk, so ``${...}`` inside them stays literal.
``GET FULL VARIABLE`` evaluates its expression by design; never put untrusted text into it.
"""

from __future__ import annotations

import re

from dncgate.agi.errors import AgiEncodingError

__all__ = [
    "MAX_COMMAND_BYTES",
    "encode_line",
    "exec_app",
    "get_full_variable",
    "get_variable",
    "hangup",
    "identifier",
    "noop",
    "quote",
    "set_variable",
    "stream_file",
    "verbose",
]

MAX_COMMAND_BYTES = 8190
"""Longest command line Asterisk reads whole: fgets() into char buf[8192] keeps 8191 bytes incl. '\\n'."""

_LINE_BREAKS = re.compile(r"[\r\n\x00]")
_BAD_IDENTIFIER = re.compile(r"[\s\"\\\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9*#A-Da-d]*")


def quote(value: str) -> str:
    """Return ``value`` as one double-quoted AGI word that parse_args() turns back into ``value``.

    CR, LF and NUL cannot be carried by AGI and become a blank.
    """
    clean = _LINE_BREAKS.sub(" ", value)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def identifier(value: str, what: str = "identifier") -> str:
    """Return ``value`` unchanged if it is safe as a bare word, else raise AgiEncodingError."""
    if not value:
        raise AgiEncodingError(f"empty {what}")
    bad = _BAD_IDENTIFIER.search(value)
    if bad:
        raise AgiEncodingError(f"{what} {value[:60]!r} contains {bad.group()!r}")
    return value


def encode_line(line: str) -> bytes:
    """Encode one command line (without terminator) to the bytes written to Asterisk."""
    if _LINE_BREAKS.search(line):
        raise AgiEncodingError(f"command contains CR, LF or NUL: {line[:60]!r}")
    if not line.strip():
        raise AgiEncodingError("empty command")
    data = line.encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise AgiEncodingError(
            f"command is {len(data)} bytes; Asterisk would split it after {MAX_COMMAND_BYTES}"
        )
    return data + b"\n"


def verbose(message: str, level: int = 1) -> str:
    if not 1 <= level <= 4:
        raise AgiEncodingError(f"verbose level {level} outside 1..4")
    return f"VERBOSE {quote(message)} {level}"


def get_variable(name: str) -> str:
    return f"GET VARIABLE {identifier(name, 'variable name')}"


def get_full_variable(expression: str, channel: str | None = None) -> str:
    line = f"GET FULL VARIABLE {quote(expression)}"
    if channel is not None:
        line += " " + identifier(channel, "channel name")
    return line


def set_variable(name: str, value: str) -> str:
    return f"SET VARIABLE {identifier(name, 'variable name')} {quote(value)}"


def exec_app(app: str, args: str = "") -> str:
    """``EXEC app "args"``; args are passed to the application as one string (commas separate them)."""
    return f"EXEC {identifier(app, 'application name')} {quote(args)}"


def stream_file(filename: str, escape_digits: str = "", offset: int | None = None) -> str:
    if not _DIGITS.fullmatch(escape_digits):
        raise AgiEncodingError(f"escape digits {escape_digits!r} are not DTMF digits")
    line = f"STREAM FILE {identifier(filename, 'file name')} {quote(escape_digits)}"
    if offset is not None:
        if offset < 0:
            raise AgiEncodingError("negative offset")
        line += f" {offset}"
    return line


def noop(text: str = "") -> str:
    return f"NOOP {quote(text)}" if text else "NOOP"


def hangup(channel: str | None = None) -> str:
    return "HANGUP" if channel is None else f"HANGUP {identifier(channel, 'channel name')}"
