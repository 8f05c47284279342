"""``dncgate dialplan install`` and ``dncgate service install`` (registered by ``dncgate.cli``).

Both copy files shipped in the package (``dncgate.install``) and print one line per file: what
was done, or with ``--dry-run`` what would be. A file that exists with other content is left
alone (the operator may have edited it) and the command exits 1 without writing anything, unless
``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dncgate.cli import codes
from dncgate.cli.base import command, group
from dncgate.install import Action, Copy, InstallError, apply, installed_command, plan, service_plan, switch_plan

if TYPE_CHECKING:
    from dncgate.settings import Settings


def add_commands(sub: Any) -> None:
    dialplan = group(sub, "dialplan", "the shipped dialplans and prompts")
    dp = command(dialplan, "install", _dialplan_install,
                 "copy the dialplan and the prompts where Asterisk or FreeSWITCH reads them")
    switch = dp.add_mutually_exclusive_group(required=True)
    switch.add_argument("--asterisk", type=Path, metavar="ETC",
                        help="Asterisk's configuration directory (/etc/asterisk): the dncgate includes, "
                             "and the samples under dncgate-samples/")
    switch.add_argument("--freeswitch", type=Path, metavar="CONF",
                        help="FreeSWITCH's configuration directory (/etc/freeswitch): the contexts into "
                             "dialplan/, the profile, gateway and ACL samples under dncgate-samples/")
    dp.add_argument("--sounds", type=Path, metavar="DIR",
                    help="the switch's sounds directory (/usr/share/asterisk/sounds, "
                         "/usr/share/freeswitch/sounds): the prompts go to DIR/dncgate/")
    dp.add_argument("--no-dialplan", action="store_true", help="install only the prompts (with --sounds)")
    _common(dp)
    service = group(sub, "service", "the systemd unit")
    svc = command(service, "install", _service_install,
                  "write the systemd unit for serve and its sysusers.d user (then: systemd-sysusers; "
                  "systemctl daemon-reload; systemctl enable --now dncgate)")
    svc.add_argument("--prefix", type=Path, default=Path("/"),
                     help="root to install under (default /: etc/systemd/system/, etc/sysusers.d/)")
    svc.add_argument("--exec", type=Path, dest="command", metavar="PATH",
                     help="the dncgate program ExecStart runs (default: this installation's, beside its Python)")
    _common(svc)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace files that differ from the shipped ones")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; write nothing")


async def _dialplan_install(args: argparse.Namespace, _: Settings) -> int:
    switch, etc = ("asterisk", args.asterisk) if args.asterisk is not None else ("freeswitch", args.freeswitch)
    if args.no_dialplan and args.sounds is None:
        raise InstallError("--no-dialplan installs only the prompts: give --sounds")
    return _install(switch_plan(switch, None if args.no_dialplan else etc, args.sounds), args)


async def _service_install(args: argparse.Namespace, _: Settings) -> int:
    command = args.command or installed_command()
    if not args.dry_run and not command.is_file():
        raise InstallError(f"{command}: no such program (give --exec PATH)")
    return _install(service_plan(args.prefix, command), args)


def _install(copies: list[Copy], args: argparse.Namespace) -> int:
    steps = plan(copies, force=args.force)
    for step in steps:
        print(step.line(dry_run=args.dry_run))
    refused = sum(step.action is Action.REFUSE for step in steps)
    if refused:
        print(f"dncgate: {refused} file(s) differ from the shipped ones; nothing written (--force replaces them)",
              file=sys.stderr)
        return codes.REFUSED
    if args.dry_run:
        return 0
    written = apply(steps)
    print(f"{written} written, {len(steps) - written} unchanged", file=sys.stderr)
    return 0
