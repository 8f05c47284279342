"""``dncgate operator add|passwd|remove|list``: the console's accounts.

The password is read from the terminal without echo (twice), or as one line of standard input with
``--password-stdin`` (scripts); it is never an argument, where ``ps`` and shell history would keep it.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dncgate.cli import codes
from dncgate.cli.base import command, group
from dncgate.operators import OperatorError, OperatorStore, Role, check_password, hash_password, new_operator
from dncgate.settings import Settings
from dncgate.store.factory import open_operator_store

STDIN_HELP = "read the password as one line of standard input (scripts), instead of asking twice at the terminal"


def add_commands(sub: Any) -> None:
    ops = group(sub, "operator", "operator accounts of the console")
    add = command(ops, "add", _add, "create an account (viewer, operator or admin; scoped to tenants)")
    add.add_argument("name", help="the account's sign-in name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role],
                     help="viewer: sees; operator: also acts on alerts, cases and complaints; admin: all tenants")
    add.add_argument("--tenant", action="append", default=[], dest="tenants",
                     help="a tenant it may see (repeat for several; an admin sees all)")
    add.add_argument("--password-stdin", action="store_true", help=STDIN_HELP)
    passwd = command(ops, "passwd", _passwd, "set a new password (and unlock the account)")
    passwd.add_argument("name", help="the account's sign-in name")
    passwd.add_argument("--password-stdin", action="store_true", help=STDIN_HELP)
    remove = command(ops, "remove", _remove, "remove an account (its sessions end at their next request)")
    remove.add_argument("name", help="the account's sign-in name")
    command(ops, "list", _list, "every account: name, role, tenants, lock")


async def demo_operator(config: Settings) -> str:
    """``serve --demo``: the account ``demo`` (admin) with a new random password each start; "name / password"."""
    password = secrets.token_urlsafe(12)
    async with _operators(config) as store:
        await store.put_operator(new_operator("demo", Role.ADMIN, [], password, datetime.now(UTC)))
    return f"demo / {password}"


@asynccontextmanager
async def _operators(config: Settings) -> AsyncIterator[OperatorStore]:
    store = open_operator_store(config.store)
    try:
        yield store
    finally:
        await store.close()


def read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return check_password(sys.stdin.readline().rstrip("\r\n"))
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise OperatorError("the passwords differ")
    return check_password(first)


async def _add(args: argparse.Namespace, config: Settings) -> int:
    unknown = [t for t in args.tenants if t != "*" and t not in config.tenants]
    if unknown:
        print(f"dncgate: tenant {', '.join(unknown)} is not configured (tenants: {', '.join(config.tenants)})",
              file=sys.stderr)
        return codes.USAGE
    try:
        operator = new_operator(args.name, args.role, args.tenants, read_password(args.password_stdin),
                                datetime.now(UTC))
    except OperatorError as exc:
        print(f"dncgate: {exc}", file=sys.stderr)
        return codes.USAGE
    async with _operators(config) as store:
        if await store.operator(operator.name) is not None:
            print(f"dncgate: operator {operator.name} exists (dncgate operator passwd to change its password)",
                  file=sys.stderr)
            return codes.REFUSED
        await store.put_operator(operator)
    print(f"operator {operator.name} added: {operator.role.value}, tenants {', '.join(operator.tenants) or 'all'}")
    return codes.OK


async def _passwd(args: argparse.Namespace, config: Settings) -> int:
    async with _operators(config) as store:
        operator = await store.operator(args.name)
        if operator is None:
            print(f"dncgate: no operator {args.name}", file=sys.stderr)
            return codes.REFUSED
        try:
            password = hash_password(read_password(args.password_stdin))
        except OperatorError as exc:
            print(f"dncgate: {exc}", file=sys.stderr)
            return codes.USAGE
        await store.put_operator(replace(operator, password=password, failures=0, locked_until=""))
    print(f"operator {args.name}: password changed")
    return codes.OK


async def _remove(args: argparse.Namespace, config: Settings) -> int:
    async with _operators(config) as store:
        removed = await store.remove_operator(args.name)
    if not removed:
        print(f"dncgate: no operator {args.name}", file=sys.stderr)
        return codes.REFUSED
    print(f"operator {args.name} removed")
    return codes.OK


async def _list(args: argparse.Namespace, config: Settings) -> int:
    async with _operators(config) as store:
        operators = await store.operators()
    for o in operators:
        lock = f"  locked until {o.locked_until}" if o.locked_until else ""
        print(f"{o.name:<24} {o.role.value:<9} {','.join(o.tenants) or '*'}{lock}")
    if not operators:
        print("no operators")
    return codes.OK
