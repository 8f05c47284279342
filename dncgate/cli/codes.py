"""The exit codes of ``dncgate`` (README "Exit codes"; the man page says the same).

Every command: 0 done, 2 a usage or configuration error (argparse's own code for a bad argument,
kept for every error the operator must fix before running the command again). ``check`` says
its decision in the code, so a script can branch on it without reading the text.
"""

from __future__ import annotations

from typing import Final

from dncgate.lists.sync import FAILURE_CAUSES, exit_code_of

OK: Final = 0
ALLOW: Final = 0  # check: the call may go ahead (also a monitor-mode tenant's would-be reject)
REJECT: Final = 1  # check: the call is refused (listed, no consent, outside hours...)
REFUSED: Final = 1  # other commands: the command ran and refused to do what was asked (nothing changed)
USAGE: Final = 2  # a bad argument, an unknown tenant, a configuration error, a file that cannot be read
CHECK_FAILED: Final = 3  # check: the check could not be completed (store down, invalid number...)
INTERRUPTED: Final = 130  # Ctrl-C (128 + SIGINT)
BROKEN_PIPE: Final = 141  # standard output's reader went away (| head): 128 + SIGPIPE, as a shell reports it

TABLE: Final = (
    (ALLOW, "check: allow (a monitor-mode tenant's would-be reject too); any other command: done"),
    (REJECT, "check: reject; any other command: refused, nothing changed (a load that would empty the list, "
             "a rule that is not there, an export that is not complete)"),
    (USAGE, "usage or configuration error: a bad argument, an unknown tenant, a configuration problem, "
            "a file that cannot be read"),
    (CHECK_FAILED, "check: the check failed (the store did not answer, the number is not valid): "
                   "the printed verdict is the tenant's failure policy"),
    *((exit_code_of(cause), f"lists sync: failed, cause {cause}") for cause in FAILURE_CAUSES),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
    (BROKEN_PIPE, "standard output was closed by its reader (`dncgate audit export` into `head`): stopped "
                  "quietly, no message"),
)
