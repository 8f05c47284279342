"""The opt-outs waiting for the ledger, on disk: a restart replays them instead of losing them.

The audit spool's design (``dncgate.audit_spool``) for the few replies the ledger could not record:
one append-only JSON-lines file, ``opt-outs.jsonl``, in the audit spool's directory (whose lock
already makes it one gate's). Each kept reply is one ``{"key", "message"}`` line, written and
fsynced before ``keep`` returns (opt-outs are rare: a sync each costs nothing); each one the ledger
recorded is a ``{"done": key}`` line, fsynced. When nothing is pending the file is truncated. At
start the lines are read back: the replies without a ``done`` are pending again, in order, with the
time they came (``Message.received_at``). Bounded: ``max_bytes`` on disk; when a reply would pass
it, the file is first rewritten with the pending replies only (a temporary file, fsynced, renamed
over it); a reply that still does not fit is not kept (logged, counted by the caller).

A crash between the ledger's commit and the ``done`` line (one fsync) replays that reply once more:
a second ``revoke`` of the same entity's consent with the same evidence. The consent is withdrawn
either way; the ledger shows both records, the second naming the same reply.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import msgspec
import structlog

from dncgate.audit_spool import MAX_LINE, SpoolError
from dncgate.messages.model import Message

__all__ = ["FILE_NAME", "OptOutSpool", "SpoolError"]

log = structlog.get_logger("dncgate.messages.opt_out_spool")
FILE_NAME = "opt-outs.jsonl"
MAX_SPOOL_BYTES = 16 << 20  # ~100 bytes a reply: far more than the count bound ever needs


class _Kept(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str = ""
    message: Message | None = None
    done: str = ""


_decode = msgspec.json.Decoder(_Kept).decode
_encode = msgspec.json.Encoder().encode


def _line(entry: dict[str, Any]) -> bytes:
    return _encode(entry) + b"\n"


class OptOutSpool:
    """The file; ``pending`` is what an earlier process left unrecorded, oldest first."""

    def __init__(self, path: Path, fd: int, size: int, *, max_bytes: int) -> None:
        self.path, self._fd, self.size, self.max_bytes = path, fd, size, max_bytes
        self.pending: list[tuple[str, Message]] = []
        self._open: dict[str, bytes] = {}  # the line of each reply not yet recorded

    @classmethod
    def open(cls, directory: Path, *, max_bytes: int = MAX_SPOOL_BYTES) -> OptOutSpool:
        """Open (create) ``directory/opt-outs.jsonl`` and read back what is pending."""
        path = directory / FILE_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise SpoolError(f"opt-out spool {path}: {exc.strerror or exc}") from None
        spool = cls(path, fd, os.fstat(fd).st_size, max_bytes=max_bytes)
        spool._read_back()
        if spool.pending:
            log.warning("messages.opt_out_replayed", path=str(path), pending=len(spool.pending))
        return spool

    def _read_back(self) -> None:
        kept: dict[str, Message] = {}
        bad = 0
        with self.path.open("rb") as file:
            while line := file.readline(MAX_LINE + 1):
                try:
                    entry = _decode(line) if line.endswith(b"\n") else None
                except (msgspec.DecodeError, msgspec.ValidationError):
                    entry = None
                if entry is None:
                    bad += 1
                elif entry.done:
                    kept.pop(entry.done, None)
                elif entry.key and entry.message is not None:
                    kept[entry.key] = entry.message
        if bad:
            log.warning("messages.opt_out_spool_damaged_lines", path=str(self.path), skipped=bad)
        self.pending = list(kept.items())
        self._open = {key: _line({"key": key, "message": message}) for key, message in kept.items()}
        if not kept:
            self._truncate()

    def append(self, key: str, message: Message) -> bool:
        """Keep one reply on disk (synced); False when it would pass ``max_bytes`` or cannot be written."""
        return self._write({"key": key, "message": message}, key=key, bound=True)

    def done(self, key: str) -> None:
        """The ledger recorded ``key``: mark it (synced); with nothing pending, empty the file."""
        if self._open.pop(key, None) is None:
            return
        if not self._open:
            self._truncate()
        else:
            self._write({"done": key}, key=key, bound=False)

    def _write(self, entry: dict[str, Any], *, key: str, bound: bool) -> bool:
        line = _line(entry)
        if bound and self.size + len(line) > self.max_bytes and not (self._compact()
                                                                  and self.size + len(line) <= self.max_bytes):
            log.error("messages.opt_out_spool_full", path=str(self.path), size=self.size, max_bytes=self.max_bytes)
            return False
        try:
            written = 0
            while written < len(line):  # a short write goes on where it stopped
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
        except OSError as exc:
            log.error("messages.opt_out_spool_failed", path=str(self.path), error=str(exc))
            with contextlib.suppress(OSError):  # no torn line for the next one to be appended to
                os.ftruncate(self._fd, self.size)
            return False
        self.size += len(line)
        if bound:
            self._open[key] = line
        return True

    def _compact(self) -> bool:
        """Rewrite the file with the pending replies only (no done marks, no recorded replies)."""
        data = b"".join(self._open.values())
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = -1
        try:  # the descriptor is the new file's before the rename: no write can go to the old one
            fd = os.open(temporary, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
            os.replace(temporary, self.path)
        except OSError as exc:
            log.error("messages.opt_out_spool_compact_failed", path=str(self.path), error=str(exc))
            if fd >= 0:
                os.close(fd)
            temporary.unlink(missing_ok=True)
            return False
        os.close(self._fd)
        self._fd, self.size = fd, len(data)
        try:
            directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            log.warning("messages.opt_out_spool_sync_failed", path=str(self.path), error=str(exc))
        return True

    def _truncate(self) -> None:
        try:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        except OSError as exc:
            log.warning("messages.opt_out_spool_truncate_failed", path=str(self.path), error=str(exc))
            return
        self.size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
