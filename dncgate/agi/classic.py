"""``dncgate-agi``: classic AGI. Asterisk runs it from agi-bin and talks over stdin/stdout::

    same => n,AGI(dncgate-agi,${NUMBER},tenant=acme,purpose=marketing)

Fast path: when the local ``dncgate serve`` is up (its ``[agi]`` address from the same
configuration, or ``DNCGATE_AGI_RELAY=host:port``), the session is relayed to its FastAGI door
(``dncgate.agi.relay``: standard library only, so the process starts in a few tens of ms) and the
server runs the same ``/check`` handler on the shared store. Slow path, when no gate answers
(or ``DNCGATE_AGI_RELAY=off``, or a ``relay=off`` argument): the decision is made in this
process, reading the same configuration as ``dncgate serve`` ($DNCGATE_CONFIG, else
/etc/dncgate/dncgate.toml if present, else defaults) and the same store; the audit record is
written before the process exits. Logs go to stderr, which Asterisk shows on its console: stdout
is the protocol.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

from dncgate.agi.relay import (
    RelayBroken,
    RelayUnavailable,
    gate_address,
    read_header,
    relay,
    wants_in_process,
)
from dncgate.config_file import SYSTEM_CONFIG, find_config

AUDIT_FLUSH = 2.0
EXIT_USAGE = 2  # dncgate.cli.codes.USAGE (not imported: the fast path imports the standard library only)
META = frozenset({"-h", "--help", "--version"})


def parser() -> argparse.ArgumentParser:
    """``dncgate-agi``'s command line, for --help and the man page: everything else comes from Asterisk."""
    from dncgate import __version__

    agi = argparse.ArgumentParser(
        prog="dncgate-agi", add_help=False,
        description="Classic AGI: Asterisk runs it from agi-bin, one process a call, and talks to it over "
        "standard input and output; it relays the call to the local dncgate serve, or "
        "decides in this process when none answers. Example: same => n,AGI(dncgate-agi,${NUMBER},"
        "tenant=acme,purpose=marketing)",
        epilog="Environment: DNCGATE_CONFIG (the configuration file, else /etc/dncgate/dncgate.toml), "
        "DNCGATE_AGI_RELAY (host:port of the gate to relay to, or off), DNCGATE_LOG_LEVEL.")
    agi.add_argument("-h", "--help", action="help", help="print this help and exit")
    agi.add_argument("--version", action="version", version=f"dncgate-agi {__version__}",
                     help="print the version and exit")
    agi.add_argument("args", nargs="*", metavar="ARG",
                     help="the dialplan's AGI() arguments: the number, then key=value (tenant=, purpose=, "
                          "category=, relay=off); read from the AGI header, as Asterisk repeats them there")
    return agi


def main(system_config: str = SYSTEM_CONFIG, argv: list[str] | None = None) -> int:
    """``system_config``: the system-wide file read when $DNCGATE_CONFIG names none (a parameter for tests)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in META:
        parser().parse_args(argv[:1])  # prints the help or the version and exits 0
    if (problem := _not_asterisk(sys.stdin.fileno(), sys.stdout.fileno())) is not None:
        print(f"dncgate-agi: {problem}: Asterisk runs this program over pipes (see dncgate-agi --help)",
              file=sys.stderr)
        return EXIT_USAGE
    address = gate_address(system=system_config)
    header, why = b"", "relay off"
    if address is not None:
        header = read_header(sys.stdin.fileno())
        if wants_in_process(header):
            return _standalone(header, "relay=off argument", system_config)
        try:
            relay(sys.stdin.fileno(), sys.stdout.fileno(), address, header)
            return 0
        except RelayUnavailable as exc:
            why = str(exc)
        except RelayBroken as exc:
            # No traceback on Asterisk's console; no verdict variables, so the dialplan fails closed.
            print(f"dncgate-agi: agi.relay.broken: {exc}", file=sys.stderr)
            return 1
    return _standalone(header, why, system_config)


def _not_asterisk(stdin: int, stdout: int) -> str | None:
    """Why standard input and output cannot carry an AGI session (None: they can: pipes or sockets;
    a terminal for the output, to try it by hand)."""
    for fd, name in ((stdin, "input"), (stdout, "output")):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return f"standard {name} is closed"
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (fd == stdout and os.isatty(fd)):
            continue
        return f"standard {name} is a terminal" if os.isatty(fd) else f"standard {name} is not a pipe"
    return None


def _standalone(header: bytes, why: str, system_config: str) -> int:
    """Decide in this process (imports the whole decision path)."""
    import asyncio

    from dncgate.logs import configure

    configure(os.environ.get("DNCGATE_LOG_LEVEL", "info"), stream=sys.stderr)
    return asyncio.run(_run(header, why, find_config(None, os.environ, system=system_config)))


async def _run(header: bytes, why: str, named: str | None) -> int:
    from pathlib import Path

    import structlog

    from dncgate.agi.check import check_handler
    from dncgate.agi.limits import AgiLimits
    from dncgate.agi.stdio import run_stdio_session
    from dncgate.app import open_app
    from dncgate.settings import ConfigError, load
    from dncgate.store.errors import StoreError

    log = structlog.get_logger("dncgate.agi.classic")
    log.info("agi.classic.in_process", reason=why, config=named or "none (built-in defaults)")
    try:
        config = load(Path(named) if named else None)
        async with open_app(config, audit_queue_size=64, audit_linger=0, audit_grace=AUDIT_FLUSH) as app:
            outcome = await run_stdio_session(
                check_handler(app.gate, door="agi-classic"), AgiLimits(), initial=header
            )
    except (ConfigError, StoreError) as exc:
        # No variables get set: the shipped dialplan treats that as a failed check (fail closed).
        log.error("agi.classic.startup_failed", error=str(exc))
        return 1
    return 0 if outcome.value == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
