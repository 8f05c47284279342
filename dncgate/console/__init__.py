"""The operators' web console: server-rendered pages on the ``[http]`` listener (``[console] enabled``).

``install_console(app, context)`` mounts ``/console/...`` (and ``/`` redirects there). Every page
needs a signed-in operator (``dncgate operator add``); every form carries the session's CSRF token;
every action goes through the same service code as the API (``EnforcementDesk``, the ledger) and
is recorded as ``console:<operator>``. Templates (Jinja2) and the stylesheet ship in the package;
nothing is fetched from elsewhere.
"""

from dncgate.console.context import ConsoleContext
from dncgate.console.web import install_console

__all__ = ["ConsoleContext", "install_console"]
