"""Open-file descriptors for ``serve``: the soft limit raised to the hard one, and a budget.

Every connection a door holds is a descriptor; when the process has none left, every door stops
accepting, the call doors included (issue 11 item 9). At start ``serve`` raises the soft
``RLIMIT_NOFILE`` to the hard limit (logged as ``gate.open_files``) and checks that the doors'
caps fit under it with :data:`RESERVE` descriptors left for everything else (the store, the audit
spool, the logs, the list sync, the call feeds, webhooks): a configuration whose caps cannot all
be held at once is refused, naming the numbers, rather than found out under a flood.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from dncgate.errors import ConfigError

__all__ = ["RESERVE", "OpenFiles", "check_budget", "raise_open_file_limit"]

RESERVE = 64
_UNLIMITED_TARGET = 1 << 20  # a soft limit to ask for when the hard one is "unlimited"
log = structlog.get_logger("dncgate.descriptors")


@dataclass(frozen=True, slots=True)
class OpenFiles:
    soft_before: int
    soft: int
    hard: int  # -1: unlimited


def raise_open_file_limit() -> OpenFiles:
    """Raise the soft open-file limit to the hard one (as far as the kernel lets us)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # above fs.nr_open, or not permitted: keep what we have
            log.warning("gate.open_files_not_raised", soft=soft, hard=hard, wanted=target, error=str(exc))
    raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenFiles(soft_before=soft, soft=raised, hard=hard)


def check_budget(needs: Mapping[str, int], limit: int, reserve: int = RESERVE) -> None:
    """Refuse caps that cannot all be held under ``limit`` descriptors with ``reserve`` left.

    ``needs``: the descriptors each door may hold at once, by its settings key (``agi.max_sessions``).
    """
    if limit == resource.RLIM_INFINITY:
        return
    total = sum(needs.values()) + reserve
    if total <= limit:
        return
    parts = " + ".join(f"{key} {count}" for key, count in needs.items())
    raise ConfigError(
        f"the doors may hold {total} open files at once ({parts} + {reserve} in reserve), but the "
        f"open-file limit is {limit}: lower those caps, or raise the hard limit "
        f"(LimitNOFILE= in the systemd unit, ulimit -Hn, docker run --ulimit nofile=)"
    )
