"""Classic AGI's fast path: hand the session to the local ``dncgate serve`` and relay the bytes.

Asterisk starts ``dncgate-agi`` once per call, so its start-up is on every call's path. Importing
the decision path (asyncio, structlog, phonenumbers, the store client) costs ~100 ms; this
module uses the standard library's ``socket`` and ``selectors`` only. It reads the agi_* header
from stdin, connects to the gate's FastAGI port, forwards the header unchanged (the server runs
the same ``/check`` handler, reading tenant and purpose from the ``key=value`` arguments) and then
copies bytes both ways until the gate closes the session.

If the gate cannot be reached within the connect deadline, ``relay()`` returns the header bytes
it read and the caller decides in-process (the slow path), so a stopped gate never fails a call
open or closed by accident.
"""

from __future__ import annotations

import os
import selectors
import socket

from dncgate.config_file import AGI_HOST, AGI_PORT, LOOPBACK_HOST, SYSTEM_CONFIG, find_config
from dncgate.errors import SwitchError

MAX_HEADER = 64 * 1024
CONNECT_DEADLINE = 0.2
IDLE_DEADLINE = 30.0  # no byte either way for this long: give up (the dialplan then fails closed)
_CHUNK = 65536


class RelayBroken(SwitchError):
    """The gate's connection broke after bytes had passed to Asterisk: too late to decide here."""


class RelayUnavailable(SwitchError):
    """The gate did not accept the session; ``header`` holds what was already read from Asterisk."""

    def __init__(self, header: bytes, reason: str) -> None:
        super().__init__(reason)
        self.header = header


def gate_address(environ: dict[str, str] | None = None, config: str | None = None, *,
                 system: str = SYSTEM_CONFIG) -> tuple[str, int] | None:
    """Where the local gate's FastAGI door listens: ``DNCGATE_AGI_RELAY`` (``host:port``, or
    ``off``), else the ``[agi]`` table of the configuration file (``config``, else the one
    ``dncgate serve`` reads: ``dncgate.config_file.find_config``) with ``DNCGATE_AGI__HOST``/``__PORT``
    overrides, else 127.0.0.1:4573. None when relaying is off or the door is disabled. A wildcard
    bind address is reached on loopback."""
    env = os.environ if environ is None else environ
    named = env.get("DNCGATE_AGI_RELAY", "")
    if named.lower() in {"off", "no", "0", "false"}:
        return None
    if named:
        host, _, port = named.rpartition(":")
    else:
        path = find_config(config, env, system=system)
        table = _agi_table(path) if path is not None else {}
        if str(env.get("DNCGATE_AGI__ENABLED", table.get("enabled", True))).lower() in {"false", "0", "no"}:
            return None
        host = env.get("DNCGATE_AGI__HOST", str(table.get("host", AGI_HOST)))
        port = env.get("DNCGATE_AGI__PORT", str(table.get("port", AGI_PORT)))
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 -- a bind-all address names no peer: use loopback
        host = LOOPBACK_HOST
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def _agi_table(path: str) -> dict[str, object]:
    """The ``[agi]`` table, or {} when the file is missing or unreadable (the slow path reports it)."""
    try:
        import tomllib

        with open(path, "rb") as f:
            table = tomllib.load(f).get("agi", {})
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def read_header(stdin: int) -> bytes:
    """The agi_* block through its empty line (or whatever arrived before EOF / the size limit)."""
    data = b""
    while b"\n\n" not in data and len(data) < MAX_HEADER:
        chunk = os.read(stdin, _CHUNK)
        if not chunk:
            break
        data += chunk
    return data


def wants_in_process(header: bytes) -> bool:
    """``relay=off`` among the AGI arguments asks for the in-process decision for this call."""
    return any(line.startswith(b"agi_arg_") and line.rstrip(b"\r").endswith(b": relay=off")
               for line in header.split(b"\n"))


def relay(stdin: int, stdout: int, address: tuple[str, int], header: bytes) -> None:
    """Forward ``header`` and then every byte both ways.

    Raises ``RelayUnavailable`` if the gate cannot be reached, or drops the connection before
    anything but the header has passed (an overloaded gate refuses sessions that way): nothing has
    been sent to Asterisk then, so the caller can still decide in-process. A connection lost later
    raises ``RelayBroken``: the dialplan then sees no verdict and fails closed."""
    try:
        sock = socket.create_connection(address, timeout=CONNECT_DEADLINE)
    except OSError as exc:
        raise RelayUnavailable(header, f"{address[0]}:{address[1]}: {exc}") from None
    relayed = False  # any byte after the header, either way
    try:
        with sock, selectors.DefaultSelector() as selector:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(header)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, "gate")
            selector.register(stdin, selectors.EVENT_READ, "asterisk")
            while True:
                ready = selector.select(IDLE_DEADLINE)
                if not ready:
                    return  # both sides silent: let the dialplan treat the check as failed
                for key, _ in ready:
                    if key.data == "gate":
                        try:
                            data = sock.recv(_CHUNK)
                        except BlockingIOError:
                            continue
                        if not data:
                            if not relayed:
                                raise ConnectionResetError("the gate closed the session without a command")
                            return  # the gate ends every session by closing: so do we
                        relayed = True
                        _write_all(stdout, data)
                    else:
                        data = os.read(stdin, _CHUNK)
                        if not data:
                            selector.unregister(stdin)  # Asterisk closed our stdin: the gate closes next
                            sock.shutdown(socket.SHUT_WR)
                            continue
                        relayed = True
                        sock.setblocking(True)
                        sock.sendall(data)
                        sock.setblocking(False)
    except ConnectionError as exc:
        if not relayed:
            raise RelayUnavailable(header, f"{address[0]}:{address[1]}: {exc}") from None
        raise RelayBroken(f"{address[0]}:{address[1]}: connection lost mid-session: {exc}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
