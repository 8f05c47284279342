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
    digit_timeout = _number(table, "digit_timeout_s", defaults.digit_timeout, 1.0, 60.0)
    max_failures = table.get("max_failures", int, defaults.max_failures)
    if not 1 <= max_failures <= 10:
        raise table.error("max_failures", "must be between 1 and 10")
    max_asks = table.get("max_asks", int, defaults.max_asks)
    if not max_failures <= max_asks <= 200:
        raise table.error("max_asks", f"must be between max_failures ({max_failures}) and 200")
    call_deadline = _number(table, "call_deadline_s", CALL_DEADLINE_S, 30.0, 3600.0)
    ledger_ms = table.get("ledger_deadline_ms", int, int(LEDGER_DEADLINE_S * 1000))
    if not 50 <= ledger_ms <= 30_000:
        raise table.error("ledger_deadline_ms", "must be between 50 and 30000")
    table.check_unknown()
    return IvrConfig(
        menu=IvrSettings(digit_timeout=digit_timeout, max_failures=max_failures, max_asks=max_asks),
        call_deadline=call_deadline,
        ledger_deadline=ledger_ms / 1000,
    )


def _number(table: _Reader, key: str, default: float, low: float, high: float) -> float:
    """Seconds given as a whole or decimal number (TOML ``6`` or ``6.5``; the environment as text)."""
    value: float = table.get(key, float, default)
    if not low <= value <= high:
        raise table.error(key, f"must be between {low:g} and {high:g}")
    return value
