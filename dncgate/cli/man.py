"""The man pages of ``dncgate`` and ``dncgate-agi``, generated from their parsers (argparse-manpage)
and shipped in the package under ``dncgate/share/man/man1/``; ``tests/cli/test_man.py`` checks the
shipped pages are what this module generates. After changing an argument or its help::

    python -m dncgate.cli.man dncgate/share/man/man1
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from argparse_manpage.manpage import Manpage

from dncgate import __version__
from dncgate.agi import classic
from dncgate.cli import codes, parser
from dncgate.config_file import SYSTEM_CONFIG

WIDTH = 80  # the help text is wrapped as on an 80-column terminal, whatever this one is
SHIPPED = resources.files("dncgate") / "share" / "man" / "man1"
DATE = "2026-12"  # of the pages' last change in substance (a header field; not today's date)

ENVIRONMENT = rf"""
.TP
\fBDNCGATE_CONFIG\fR
the configuration file when \fB\-\-config\fR names none (else {SYSTEM_CONFIG} if it exists)
.TP
\fBDNCGATE_\fITABLE\fB__\fIKEY\fR
overrides one configuration key (\fBDNCGATE_STORE__BACKEND=redis\fR, \fBDNCGATE_TENANTS__ACME__MODE=monitor\fR)
"""
FILES = rf"""
.TP
{SYSTEM_CONFIG}
the system-wide configuration
.TP
/var/lib/dncgate/dncgate.sqlite3
the default SQLite store (lists, audit, consent ledger)
"""
AGI_SEE_ALSO = r"\fBdncgate\fR(1); the dialplan: \fBdncgate dialplan install \-\-asterisk /etc/asterisk\fR"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def exit_status() -> str:
    return "".join(f".TP\n\\fB{code}\\fR\n{_escaped(text)}\n" for code, text in codes.TABLE)


def _parsers(top: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield top
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def page(top: argparse.ArgumentParser, summary: str, sections: dict[str, str]) -> str:
    for each in _parsers(top):
        each.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
    man = Manpage(top, {"date": DATE, "version": __version__, "project_name": "dncgate",
                        "manual_title": "dncgate manual", "description": summary})
    for heading, content in sections.items():
        man.add_section(heading, ">", content.strip("\n"))
    return str(man)


def pages() -> dict[str, str]:
    """File name -> the page's roff text."""
    return {
        "dncgate.1": page(parser(), "a do-not-call gate inside the telephone switch", {
            "EXIT STATUS": exit_status(), "ENVIRONMENT": ENVIRONMENT, "FILES": FILES,
            "SEE ALSO": r"\fBdncgate\-agi\fR(1)",
        }),
        "dncgate-agi.1": page(classic.parser(), "the do-not-call gate as a classic AGI program", {
            "EXIT STATUS": ".TP\n\\fB0\\fR\nthe session ran (the verdict is in the channel variables)\n.TP\n"
                           "\\fB1\\fR\nthe session failed: no verdict, the dialplan fails closed\n.TP\n"
                           "\\fB2\\fR\nnot started by Asterisk: standard input is not a pipe\n",
            "SEE ALSO": AGI_SEE_ALSO,
        }),
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages().items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else str(SHIPPED))):
        print(path)
