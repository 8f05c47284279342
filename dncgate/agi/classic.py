"""``dncgate-agi``: classic AGI. Asterisk runs it from agi-bin and talks over stdin/stdout::

    same => n,AGI(dncgate-agi,${NUMBER},tenant=acme,purpose=marketing)

It reads the same configuration as ``dncgate serve`` ($DNCGATE_CONFIG, else
/etc/dncgate/dncgate.toml if present, else defaults), shares its store, and runs the same
``/check`` handler. Logs go to stderr, which Asterisk shows on its console: stdout is the protocol.
The audit record is written before the process exits.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import structlog

from dncgate.agi.check import check_handler
from dncgate.agi.limits import AgiLimits
from dncgate.agi.stdio import run_stdio_session
from dncgate.audit import AuditSink
from dncgate.config import ConfigError, load
from dncgate.gate import Gate
from dncgate.logs import configure
from dncgate.store.errors import StoreError
from dncgate.store.factory import open_store

SYSTEM_CONFIG = Path("/etc/dncgate/dncgate.toml")
AUDIT_FLUSH = 2.0


def _config_path() -> Path | None:
    named = os.environ.get("DNCGATE_CONFIG")
    if named:
        return Path(named)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


async def run() -> int:
    log = structlog.get_logger("dncgate.agi.classic")
    try:
        config = load(_config_path())
        store = await open_store(config.store)
    except (ConfigError, StoreError) as exc:
        # No variables get set: the shipped dialplan treats that as a failed check (fail closed).
        log.error("agi.classic.startup_failed", error=str(exc))
        return 1
    audit = AuditSink(store, queue_size=64)
    audit.start()
    gate = Gate(config.tenants, store, audit, store_deadline=config.store.timeout_ms / 1000)
    try:
        outcome = await run_stdio_session(check_handler(gate, door="agi-classic"), AgiLimits(max_sessions=1))
    finally:
        await audit.close(timeout=AUDIT_FLUSH)
        await store.close()
    return 0 if outcome.value == "ok" else 1


def main() -> int:
    configure(os.environ.get("DNCGATE_LOG_LEVEL", "info"), stream=sys.stderr)
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
