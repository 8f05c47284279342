"""Reading ``[ivr]`` from the configuration (called by ``dncgate.config``): the self-service menu's bounds.

::

    [ivr]
    digit_timeout_s = 6       # after a prompt, for the first digit (and between digits)
    max_failures = 3          # consecutive timeouts or invalid choices before goodbye
    max_asks = 30             # digit collections in one call, whatever happens
    call_deadline_s = 600     # the whole call, prompts included
    ledger_deadline_ms = 2000 # every consent-ledger read and write
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dncgate.ivr.flow import IvrSettings

if TYPE_CHECKING:
    from dncgate.config import _Reader

CALL_DEADLINE_S = 600.0
LEDGER_DEADLINE_S = 2.0


@dataclass(frozen=True, slots=True)
class IvrConfig:
    menu: IvrSettings = field(default_factory=IvrSettings)
    call_deadline: float = CALL_DEADLINE_S
    ledger_deadline: float = LEDGER_DEADLINE_S


def ivr_settings(table: _Reader) -> IvrConfig:
    defaults = IvrSettings()
    # seconds as a whole or decimal number (TOML 6 or 6.5; the environment as text)
    digit_timeout = table.between("digit_timeout_s", float, defaults.digit_timeout, 1.0, 60.0)
    max_failures = table.between("max_failures", int, defaults.max_failures, 1, 10)
    max_asks = table.get("max_asks", int, defaults.max_asks)
    if not max_failures <= max_asks <= 200:
        raise table.error("max_asks", f"must be between max_failures ({max_failures}) and 200")
    call_deadline = table.between("call_deadline_s", float, CALL_DEADLINE_S, 30.0, 3600.0)
    ledger_ms = table.between("ledger_deadline_ms", int, int(LEDGER_DEADLINE_S * 1000), 50, 30_000)
    table.check_unknown()
    return IvrConfig(
        menu=IvrSettings(digit_timeout=digit_timeout, max_failures=max_failures, max_asks=max_asks),
        call_deadline=call_deadline,
        ledger_deadline=ledger_ms / 1000,
    )
