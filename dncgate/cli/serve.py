"""``dncgate serve``: the doors, health and metrics; ``--demo``: on the demo's configuration and lists."""

from __future__ import annotations

import argparse
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from dncgate.cli.base import command, with_store
from dncgate.lists.loader import load_file
from dncgate.numbers import DialPlan
from dncgate.settings import Settings
from dncgate.store.protocol import ListStore

DEMO = resources.files("dncgate") / "demo"
DEMO_DB = "dncgate-demo.sqlite3"
DEMO_REGION = "CN"  # the demo lists' numbers, and dncgate/demo/dncgate.toml's region


def add_commands(sub: Any) -> None:
    serve = command(sub, "serve", _serve, "run the doors (FastAGI, event socket), health and metrics")
    serve.add_argument("--demo", action="store_true", dest="serve_demo",
                       help="load the bundled demo lists into the demo's SQLite file and serve them on the demo's "
                            "configuration (the same as dncgate --demo serve)")
    serve.add_argument("--demo-db", dest="serve_demo_db", metavar="FILE",
                       help=f"the demo's SQLite file (default: {DEMO_DB} in the current directory)")
    serve.add_argument("--workers", type=int, dest="serve_workers", metavar="N",
                       help="run N worker processes on the same listening sockets under a supervisor "
                            "(SIGUSR2: rolling restart); default: [serve] workers, 1 = one process")
    serve.set_defaults(event_loop_setting=True)  # runs on [serve] event_loop (dncgate.cli.main)


async def _serve(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.service import Running, serve
    from dncgate.worker import worker_role

    if args.serve_workers is not None:
        if args.serve_workers < 1:
            raise ValueError(f"--workers {args.serve_workers}: must be 1 or more")
        config = replace(config, serve=msgspec.structs.replace(config.serve, workers=args.serve_workers))
    role = worker_role()
    if config.serve.workers >= 2 and role is None:
        from dncgate.supervisor import Supervisor

        return await Supervisor(config).run()  # refuses --demo: its enforcement runs once per host
    demo_login = ""
    if args.demo and role is None:
        from dncgate.cli.operator import demo_operator

        await with_store(config, load_demo, create=True)
        demo_login = await demo_operator(config)

    def ready(running: Running) -> None:
        if args.demo:
            print(demo_help(running.agi_port, running.http_port, config), flush=True)
            print(f"  console:  http://127.0.0.1:{running.http_port}/console/   sign in as {demo_login}", flush=True)

    db = config.store.path
    await serve(config, on_ready=ready, overrides=(lambda read: demo_settings(read, db)) if args.demo else None)
    return 0


async def load_demo(store: ListStore) -> int:
    """The demo lists: the national list, the default tenant's own list and a prefix rule +86170."""
    with resources.as_file(DEMO / "national.txt") as national:
        await load_file(store, "national", national, DialPlan(region=DEMO_REGION))
    with resources.as_file(DEMO / "tenant-default.txt") as tenant:
        await load_file(store, "tenant:default", tenant, DialPlan(region=DEMO_REGION))
    await store.set_prefix_rule("tenant:default", "86170")
    return 0


def demo_settings(settings: Settings, db: Path) -> Settings:
    """The demo's overrides of its file: the SQLite store ``db``, the console and enforcement on.
    ``--demo`` applies them at start and serve's SIGHUP to each file it reads again."""
    store = msgspec.structs.replace(settings.store, backend="sqlite", path=db.absolute())
    return replace(settings, store=store, console=msgspec.structs.replace(settings.console, enabled=True),
                   enforcement=msgspec.structs.replace(settings.enforcement, enabled=True))


def demo_config() -> Path:
    """The demo's configuration file, as a file on disk for as long as the process runs."""
    return Path(str(DEMO / "dncgate.toml"))


# The examples the banner prints: (what to type after "dncgate --demo ", what it answers).
DEMO_EXAMPLES = (
    ("check 13800138000", "REJECT national_dnc: on the national list (any dialled form: +8613800138000 too)"),
    ("check +8618612345678", "REJECT tenant_dnc: on the default tenant's own list"),
    ("check 17012345678", "REJECT prefix_rule: the tenant's prefix rule +86170"),
    ("check 13800138001", "ALLOW allowed_clear: listed nowhere (08:00-21:00 Beijing time; outside those "
                          "hours: REJECT outside_hours)"),
    ("check 13800138000 --purpose service", "ALLOW allowed_service: a service call"),
    ("check 110", "ALLOW allowed_emergency: emergency (police), always"),
    ("check 13800138000 --tenant acme", "REJECT national_dnc: the reseller acme, same national list"),
)


def demo_help(agi_port: int | None, http_port: int | None, config: Settings) -> str:
    db = "" if str(config.store.path) == str(Path(DEMO_DB).absolute()) else f" --demo-db {config.store.path}"
    examples = "\n".join(f"  dncgate --demo{db} {cmd:<38} # {answer}" for cmd, answer in DEMO_EXAMPLES)
    return f"""
dncgate is running on its embedded SQLite store ({config.store.path}) with a demo list.
  FastAGI:  agi://127.0.0.1:{agi_port}/check?tenant=default&purpose=marketing
  health:   http://127.0.0.1:{http_port}/healthz    metrics: http://127.0.0.1:{http_port}/metrics
Ask it for a decision from another terminal, in this directory (.venv/bin/dncgate if the venv is not active):
{examples}
  dncgate --demo{db} {"audit tail -n 5":<38} # the decisions, as recorded
Stop it with Ctrl-C."""
