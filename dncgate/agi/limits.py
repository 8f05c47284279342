"""Size limits and deadlines for one AGI session (FastAGI or classic AGI).

How many sessions a FastAGI server runs, and for whom, is :class:`dncgate.sessions.ServerLimits`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AgiLimits"]


@dataclass(frozen=True, slots=True)
class AgiLimits:
    """Every bound the AGI layer enforces.

    Sizes are in bytes and exclude the line terminator. Asterisk itself reads command lines into an
    8192-byte buffer (AGI_BUF_LEN) and passes at most 127 AGI() arguments, so the defaults leave room
    for a real Asterisk while keeping a misbehaving peer from growing our memory.
    """

    max_line_bytes: int = 8192
    """Longest line accepted from the peer (header line or reply line)."""
    max_header_lines: int = 256
    """Most agi_* lines in the header block (Asterisk 22 sends 22 + one per AGI() argument)."""
    max_header_bytes: int = 64 * 1024
    """Most bytes in the header block, terminators included."""
    max_usage_lines: int = 256
    """Most lines inside a multi-line ``520-`` usage reply."""
    header_timeout: float = 5.0
    """Seconds for the whole header block to arrive after the connection is accepted."""
    reply_timeout: float = 10.0
    """Seconds for one command to be written and its whole reply read (overridable per call)."""
    close_timeout: float = 1.0
    """Seconds to wait for our side of the socket to close cleanly before it is aborted."""
    session_timeout: float | None = None
    """Seconds the handler may run in total; None means no bound beyond the per-read deadlines."""
    read_chunk: int = 4096
    """Bytes asked of the transport per read."""

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_header_lines", "max_header_bytes", "max_usage_lines", "read_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"AgiLimits.{name} must be >= 1")
        for name in ("header_timeout", "reply_timeout", "close_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AgiLimits.{name} must be > 0")
        if self.session_timeout is not None and not self.session_timeout > 0:
            raise ValueError("AgiLimits.session_timeout must be > 0 or None")
