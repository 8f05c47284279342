"""``python -m dncgate.cli``: the ``dncgate`` command (serve's isolated sync runs it so)."""

import sys

from dncgate.cli import main

if __name__ == "__main__":
    sys.exit(main())
