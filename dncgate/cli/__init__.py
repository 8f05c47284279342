"""``dncgate``: serve the doors, load lists, check a number, read the audit, check the configuration.

One module per command group (``serve``, ``check``, ``lists``, ``audit``, ``config``, ``consent``,
``cases``, ``operator``, ``ops``), each adding its parsers with ``add_commands``; this module builds the tree, reads the
configuration and turns every error into one line on standard error and an exit code
(``dncgate.cli.codes``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from dncgate import __version__
from dncgate.cli import audit, cases, check, codes, config, consent, lists, operator, ops, serve
from dncgate.config_file import SYSTEM_CONFIG, find_config
from dncgate.lists.formats import ListFileError
from dncgate.logs import configure
from dncgate.settings import ConfigError, Settings, load
from dncgate.store.errors import StoreError

DESCRIPTION = "A do-not-call gate inside the telephone switch."


def _event_loop(args: argparse.Namespace, settings: Settings) -> Callable[[Coroutine[Any, Any, int]], int]:
    """How a command's coroutine runs: ``serve`` on ``[serve] event_loop`` (uvloop by default: the
    same program, ~10-25% less CPU a check), every other command on asyncio's own loop."""
    if getattr(args, "event_loop_setting", False) and settings.serve.event_loop == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def main(argv: list[str] | None = None, *, system_config: str = SYSTEM_CONFIG) -> int:
    """``system_config``: the system-wide file read when neither --config nor $DNCGATE_CONFIG names one."""
    args = parser().parse_args(argv)
    args.command_line = ["dncgate", *(sys.argv[1:] if argv is None else argv)]  # recorded by consent grant|revoke
    configure(args.log_level)
    try:
        settings = _config(args, system_config)
        result: int = _event_loop(args, settings)(args.run(args, settings))
        sys.stdout.flush()  # a reader that went away (| head) is seen here, not at exit
        return result
    except BrokenPipeError:
        _quiet_stdout()
        return codes.BROKEN_PIPE
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"dncgate: configuration error: {problem}", file=sys.stderr)
    except ListFileError as exc:
        print(f"dncgate: {exc}", file=sys.stderr)
    except StoreError as exc:
        print(f"dncgate: store error: {exc}", file=sys.stderr)
    except (ValueError, OSError) as exc:
        print(f"dncgate: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return codes.INTERRUPTED
    return codes.USAGE


def _quiet_stdout() -> None:
    """Standard output's reader is gone: point it at /dev/null, so that Python's own flush at exit
    finds nothing to complain about (no "BrokenPipeError" message)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _config(args: argparse.Namespace, system_config: str) -> Settings:
    args.demo = args.demo or getattr(args, "serve_demo", False)
    if args.demo and args.config:
        raise ValueError("--demo reads the demo's configuration: leave out --config")
    path = str(serve.demo_config()) if args.demo else find_config(args.config, os.environ, system=system_config)
    settings = load(Path(path) if path else None)
    if args.demo:
        db = getattr(args, "serve_demo_db", None) or args.demo_db or settings.store.path
        settings = serve.demo_settings(settings, Path(db))
    return settings


def parser() -> argparse.ArgumentParser:
    """The whole command tree (also what the man page is generated from: ``dncgate.cli.man``)."""
    top = argparse.ArgumentParser(prog="dncgate", description=DESCRIPTION)
    top.add_argument("--version", action="version", version=f"dncgate {__version__}",
                     help="print the version and exit")
    top.add_argument("--config", metavar="FILE", help=f"TOML file (default: $DNCGATE_CONFIG, else {SYSTEM_CONFIG} "
                     "if it exists, else built-in defaults)")
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                     help="the least severe log events written to standard error, as JSON lines (default: info)")
    top.add_argument("--demo", action="store_true", help="use the demo's configuration (a carrier in China, "
                     "the tenants default and acme) and its SQLite file, as dncgate serve --demo does")
    top.add_argument("--demo-db", metavar="FILE", help=f"with --demo: the demo's SQLite file (default: "
                     f"{serve.DEMO_DB} in the current directory)")
    sub = top.add_subparsers(required=True, metavar="COMMAND", title="commands")
    for module in (serve, check, lists, audit, config, consent, cases, operator, ops):
        module.add_commands(sub)
    return top


if __name__ == "__main__":
    sys.exit(main())
