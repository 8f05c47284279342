"""What every command module of ``dncgate`` shares: the command signature, the sub-command helper,
the store opener and the ``--json`` output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from dncgate.app import open_app
from dncgate.settings import Settings
from dncgate.store.protocol import ListStore

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def command(sub: Any, name: str, run: Command, text: str) -> argparse.ArgumentParser:
    """The sub-command ``name`` of ``sub`` (an ``add_subparsers()`` action), run by ``run``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(run=run)
    return parser


def group(sub: Any, name: str, text: str) -> Any:
    """A command group (``dncgate lists ACTION``): its own sub-commands."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    return parser.add_subparsers(required=True, metavar="ACTION", title="actions")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="one JSON object a line, with the same keys every time (for scripts)")


def print_json(value: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n")


async def with_store(config: Settings, work: Callable[[ListStore], Coroutine[Any, Any, int]], *,
                     create: bool = False) -> int:
    """``work`` on the configured store; ``create``: only for a command that writes lists (see store.factory)."""
    async with open_app(config, create_store=create, audit_queue_size=16) as app:
        return await work(app.store)
