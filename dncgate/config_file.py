"""Which configuration file a program reads, and the doors' defaults (addresses, session caps, peers).

Standard library only: classic AGI's relay (``dncgate.agi.relay``) imports this on every call
before it knows whether it will decide in-process, and must stay fast to start. ``dncgate serve``,
every ``dncgate`` command and ``dncgate-agi`` find their file here, so they read the same one:

1. ``--config FILE`` (commands that take it), else
2. ``$DNCGATE_CONFIG``, else
3. ``/etc/dncgate/dncgate.toml`` when that file exists, else
4. none: built-in defaults (plus ``DNCGATE_*`` environment overrides).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SYSTEM_CONFIG = "/etc/dncgate/dncgate.toml"
CONFIG_VARIABLE = "DNCGATE_CONFIG"
# [agi] host and port when the file sets none (the relay reads them without the settings schema).
LOOPBACK_HOST = "127.0.0.1"  # where every listener listens, and every switch is looked for, by default
AGI_HOST = LOOPBACK_HOST
AGI_PORT = 4573
ESL_PORT = 8084  # [esl]: FreeSWITCH's outbound socket connects here
HTTP_PORT = 9464  # [http]: health, metrics and the API
# Every door's defaults ([agi], [esl], [http]; dncgate.sessions.ServerLimits): written here once.
MAX_SESSIONS = 512  # sessions (HTTP: requests) running at once
MAX_SESSIONS_PER_PEER = 256  # sessions one peer address may hold at once
LOOPBACK_PEERS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # the peer networks a call door accepts


def find_config(explicit: str | None, environ: Mapping[str, str], *, system: str = SYSTEM_CONFIG) -> str | None:
    """The configuration file to read, or None for built-in defaults.

    ``system`` is the system-wide file's path: a parameter so tests can point it elsewhere."""
    if explicit:
        return explicit
    named = environ.get(CONFIG_VARIABLE, "")
    if named:
        return named
    return system if os.path.isfile(system) else None
