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

import os
import sys

from dncgate.agi.relay import (
    SYSTEM_CONFIG,
    RelayBroken,
    RelayUnavailable,
    gate_address,
    read_header,
    relay,
    wants_in_process,
)

AUDIT_FLUSH = 2.0


def main() -> int:
    address = gate_address()
    header, why = b"", "relay off"
    if address is not None:
        header = read_header(sys.stdin.fileno())
        if wants_in_process(header):
            return _standalone(header, "relay=off argument")
        try:
            relay(sys.stdin.fileno(), sys.stdout.fileno(), address, header)
            return 0
        except RelayUnavailable as exc:
            why = str(exc)
        except RelayBroken as exc:
            # No traceback on Asterisk's console; no verdict variables, so the dialplan fails closed.
            print(f"dncgate-agi: agi.relay.broken: {exc}", file=sys.stderr)
            return 1
    return _standalone(header, why)


def _standalone(header: bytes, why: str) -> int:
    """Decide in this process (imports the whole decision path)."""
    import asyncio

    from dncgate.logs import configure

    configure(os.environ.get("DNCGATE_LOG_LEVEL", "info"), stream=sys.stderr)
    named = os.environ.get("DNCGATE_CONFIG") or (SYSTEM_CONFIG if os.path.exists(SYSTEM_CONFIG) else None)
    return asyncio.run(_run(header, why, named))


async def _run(header: bytes, why: str, named: str | None) -> int:
    from pathlib import Path

    import structlog

    from dncgate.agi.check import check_handler
    from dncgate.agi.limits import AgiLimits
    from dncgate.agi.stdio import run_stdio_session
    from dncgate.audit import AuditSink
    from dncgate.config import ConfigError, load
    from dncgate.gate import Gate
    from dncgate.store.errors import StoreError
    from dncgate.store.factory import open_store

    log = structlog.get_logger("dncgate.agi.classic")
    log.info("agi.classic.in_process", reason=why)
    try:
        config = load(Path(named) if named else None)
        store = await open_store(config.store)
    except (ConfigError, StoreError) as exc:
        # No variables get set: the shipped dialplan treats that as a failed check (fail closed).
        log.error("agi.classic.startup_failed", error=str(exc))
        return 1
    audit = AuditSink(store, queue_size=64, linger=0)
    audit.start()
    gate = Gate(config.tenants, store, audit, store_deadline=config.store.timeout_ms / 1000)
    try:
        outcome = await run_stdio_session(
            check_handler(gate, door="agi-classic"), AgiLimits(), initial=header
        )
    finally:
        await audit.close(timeout=AUDIT_FLUSH)
        await store.close()
    return 0 if outcome.value == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
