"""``dncgate``: serve the doors, load lists, check a number, read the audit, check the configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import msgspec

from dncgate import __version__
from dncgate.app import open_app
from dncgate.config_file import SYSTEM_CONFIG, find_config
from dncgate.gate import CheckRequest
from dncgate.lists.formats import FORMATS, LineError, ListFileError
from dncgate.lists.loader import LoadRefused, LoadSummary, load_file
from dncgate.logs import configure
from dncgate.model import Originator, Purpose
from dncgate.numbers import DialPlan, rule_prefix
from dncgate.settings import ConfigError, EslSettings, Listener, Settings, load
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore, stats_of

EXIT_USAGE = 2
SHOWN_ERRORS = 20


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def main(argv: list[str] | None = None, *, system_config: str = SYSTEM_CONFIG) -> int:
    """``system_config``: the system-wide file read when neither --config nor $DNCGATE_CONFIG names one."""
    args = _parser().parse_args(argv)
    configure(args.log_level)
    try:
        config = _config(args, system_config)
        result: int = asyncio.run(args.run(args, config))
        return result
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
        return 130
    return EXIT_USAGE


def _config(args: argparse.Namespace, system_config: str) -> Settings:
    path = find_config(args.config, os.environ, system=system_config)
    config = load(Path(path) if path else None)
    if getattr(args, "demo", False):
        # absolute: the banner's example commands then work from any directory
        store = msgspec.structs.replace(config.store, backend="sqlite", path=Path(args.demo_db).absolute())
        config = replace(config, store=store, console=msgspec.structs.replace(config.console, enabled=True),
                         enforcement=msgspec.structs.replace(config.enforcement, enabled=True))
    return config


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dncgate", description="A do-not-call gate inside the telephone switch.")
    parser.add_argument("--version", action="version", version=f"dncgate {__version__}")
    parser.add_argument("--config", help=f"TOML file (default: $DNCGATE_CONFIG, else {SYSTEM_CONFIG} if it exists, "
                        "else built-in defaults)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = _command(sub, "serve", _serve, "run the doors (FastAGI), health and metrics")
    serve.add_argument("--demo", action="store_true", help="load the bundled demo list into a local SQLite file")
    serve.add_argument("--demo-db", default="dncgate-demo.sqlite3", help="the demo's SQLite file")

    check = _command(sub, "check", _check, "print the decision for one number, and why")
    check.add_argument("number")
    check.add_argument("--tenant")
    check.add_argument("--purpose", type=str.lower, choices=[p.value for p in Purpose],
                       help="service or marketing (default: the tenant's)")
    check.add_argument("--category", help="one of [consent] categories")
    check.add_argument("--account", default="cli")

    lists = sub.add_parser("lists", help="load and inspect lists").add_subparsers(required=True, metavar="ACTION")
    load_p = _command(lists, "load", _lists_load, "load a list file (one number a line or CSV; gzip)")
    load_p.add_argument("--list", required=True, dest="list_name", help="national or tenant:NAME")
    load_p.add_argument("file", type=Path)
    load_p.add_argument("--format", default="auto", choices=FORMATS,
                        help="ftc: the US FTC download; tps: the UK TPS file (default: auto, lines or CSV)")
    load_p.add_argument("--delta", action="store_true", help="apply adds and removes instead of replacing")
    load_p.add_argument("--region", help="region for numbers not in +E.164 form (default: [national] region)")
    load_p.add_argument("--errors", type=Path, help="write every invalid line here (JSON lines)")
    load_p.add_argument("--allow-empty", action="store_true",
                        help="replace the list even when the file has no valid numbers (empties it)")
    load_p.add_argument("--force", action="store_true",
                        help="replace the list even when that shrinks it by more than [sync] max_shrink_percent")
    _command(lists, "stats", _lists_stats, "show every list's version and size")
    sync_p = _command(lists, "sync", _lists_sync, "sync the list once from the [sync] source (snapshot and deltas)")
    sync_p.add_argument("--force", action="store_true",
                        help="load a snapshot even when it shrinks the list by more than [sync] max_shrink_percent")
    sync_p.add_argument("--nice", type=int, default=0, choices=range(20), metavar="N",
                        help="lower this process's CPU priority by N first (serve's periodic sync uses 10)")
    rule = _command(lists, "rule", _lists_rule, "add or remove a prefix rule (block +86170 wholesale)")
    rule.add_argument("action", choices=["add", "remove"])
    rule.add_argument("--list", required=True, dest="list_name")
    rule.add_argument("prefix", help="+86170 (E.164), or national in the list's region (170 in CN)")
    rule.add_argument("--force", action="store_true", help="take a prefix no longer than a country code")

    audit = sub.add_parser("audit", help="read the durable audit").add_subparsers(required=True, metavar="ACTION")
    tail = _command(audit, "tail", _audit_tail, "the newest decisions, as JSON lines")
    tail.add_argument("-n", type=_positive, default=20, help="how many records, newest last (1 or more)")
    export = _command(audit, "export", _audit_export, "every retained decision, as JSON lines")
    export.add_argument("--output", type=Path, help="a file (default: standard output)")

    _command(sub, "init", _init, "create the configured store and its schema (the SQLite file), print where it is")

    config = sub.add_parser("config", help="configuration").add_subparsers(required=True, metavar="ACTION")
    _command(config, "check", _config_check, "validate the configuration and print it")
    _command(config, "sample", _config_sample, "print a dncgate.toml with every key at its default, commented")
    _command(config, "reference", _config_reference, "print the settings reference: every key (Markdown)")

    from dncgate.cli_consent import add_commands

    add_commands(sub, _command)  # consent export|verify|purge, api-key new
    from dncgate.cli_ops import add_commands as add_ops_commands

    add_ops_commands(sub, _command)  # dialplan install, service install
    from dncgate.cli_console import add_commands as add_console_commands

    add_console_commands(sub, _command)  # operator add|passwd|remove|list
    return parser


def _command(sub: Any, name: str, run: Command, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(run=run)
    return parser


async def _with_store(config: Settings, work: Callable[[ListStore], Coroutine[Any, Any, int]], *,
                      create: bool = False) -> int:
    """``work`` on the configured store; ``create``: only for a command that writes lists (see store.factory)."""
    async with open_app(config, create_store=create, audit_queue_size=16) as app:
        return await work(app.store)


async def _serve(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.service import Running, serve

    demo_login = ""
    if args.demo:
        from dncgate.cli_console import demo_operator

        await _with_store(config, _load_demo, create=True)
        demo_login = await demo_operator(config)

    def ready(running: Running) -> None:
        if args.demo:
            _print_demo_help(running, config)
            print(f"  console:  http://127.0.0.1:{running.http_port}/console/   sign in as {demo_login}", flush=True)

    await serve(config, on_ready=ready)
    return 0


async def _load_demo(store: ListStore) -> int:
    demo = resources.files("dncgate") / "demo"
    with resources.as_file(demo / "national.txt") as national:
        await load_file(store, "national", national, DialPlan(region="CN"))
    with resources.as_file(demo / "tenant-default.txt") as tenant:
        await load_file(store, "tenant:default", tenant, DialPlan(region="CN"))
    await store.set_prefix_rule("tenant:default", "86170")
    return 0


def _print_demo_help(running: Any, config: Settings) -> None:
    env = f"DNCGATE_STORE__PATH={config.store.path}"
    print(
        f"""
dncgate is running on its embedded SQLite store ({config.store.path}) with a demo list.
  FastAGI:  agi://127.0.0.1:{running.agi_port}/check?tenant=default&purpose=marketing
  health:   http://127.0.0.1:{running.http_port}/healthz    metrics: http://127.0.0.1:{running.http_port}/metrics
Ask it for a decision from another terminal (.venv/bin/dncgate if the venv is not active):
  {env} dncgate check +8613800138000    # on the national list: REJECT national_dnc
  {env} dncgate check +8618612345678    # on the tenant's list: REJECT tenant_dnc
  {env} dncgate check +8617012345678    # prefix rule +86170: REJECT prefix_rule
  {env} dncgate check +8613800138001    # not listed: ALLOW allowed_clear (08:00-21:00 Beijing time;
                                        #   outside those calling hours: REJECT outside_hours)
  {env} dncgate check +8613800138000 --purpose service   # service call: ALLOW
  {env} dncgate check 911               # emergency: always ALLOW
Stop it with Ctrl-C.""",
        flush=True,
    )


async def _check(args: argparse.Namespace, config: Settings) -> int:
    from structlog import get_logger

    if args.tenant is not None:
        config.configured_tenant(args.tenant)
    request = CheckRequest(
        dialled=args.number, door="cli", tenant=args.tenant, purpose=args.purpose,
        category=config.configured_category(args.category),
        originator=Originator(account=args.account),
    )
    async with open_app(config, audit_queue_size=16) as app:
        result = await app.gate.check(request, get_logger("dncgate.cli"))
    d = result.decision
    print(f"{d.verdict.value.upper()}  reason={d.reason.value}  outcome={d.outcome.value}  mode={d.mode.value}")
    print(f"  callee={result.record.callee or '-'}  list={d.list_name or '-'}  version={d.list_version or '-'}")
    if d.sip_code:
        print(f"  sip={d.sip_code}  announcement={d.announcement or '-'}")
    if d.detail:
        print(f"  detail={d.detail}")
    print(f"  decision_id={result.decision_id}  latency_us={result.record.latency_us}")
    return 0


async def _lists_load(args: argparse.Namespace, config: Settings) -> int:
    config.configured_list(args.list_name)
    region = (args.region or config.national_region).upper()
    progress = _progress(sys.stderr) if sys.stderr.isatty() else None

    async def run(store: ListStore) -> int:
        try:
            with _errors_file(args.errors) as on_invalid:  # every bad line, written as it is found
                summary = await load_file(
                    store, args.list_name, args.file, DialPlan(region=region), fmt=args.format, delta=args.delta,
                    progress=progress, allow_empty=args.allow_empty, max_shrink=config.sync.max_shrink,
                    force=args.force, on_invalid=on_invalid,
                )
        except LoadRefused as exc:
            if progress is not None:
                sys.stderr.write("\n")
            _report_invalid(exc.summary, args.errors, sys.stdout)
            print(f"dncgate: {exc}", file=sys.stderr)
            return 1
        _report(summary, args.errors, sys.stdout)
        return 0

    return await _with_store(config, run, create=True)


def _progress(stream: TextIO) -> Callable[[int], None]:
    def show(lines: int) -> None:
        stream.write(f"\rread {lines:,} lines")
        stream.flush()

    return show


def _report(summary: LoadSummary, errors_path: Path | None, out: TextIO) -> None:
    what = f"added {summary.loaded:,}, removed {summary.removed:,}" if summary.mode == "delta" else (
        f"loaded {summary.loaded:,} as version {summary.version}"
        + (f" (replacing {summary.previous_version})" if summary.previous_version else "")
    )
    print(f"\n{summary.list_name}: read {summary.read:,} lines; {what}; duplicates {summary.duplicates:,}; "
          f"invalid {len(summary.invalid):,}", file=out)
    _report_invalid(summary, errors_path, out)


def _report_invalid(summary: LoadSummary, errors_path: Path | None, out: TextIO) -> None:
    for error in summary.invalid[:SHOWN_ERRORS]:
        print(f"  line {error.line}: {error.text!r}: {error.problem}", file=out)
    if len(summary.invalid) > SHOWN_ERRORS and errors_path is None:
        print(f"  ... {len(summary.invalid) - SHOWN_ERRORS:,} more: use --errors FILE for all of them", file=out)
    if errors_path is not None:
        print(f"  every invalid line is in {errors_path}", file=out)


@contextlib.contextmanager
def _errors_file(path: Path | None) -> Iterator[Callable[[LineError], None] | None]:
    """A writer of bad lines to ``path`` as JSON lines (None: no file)."""
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8") as f:

        def write(error: LineError) -> None:
            f.write(json.dumps({"line": error.line, "text": error.text, "problem": error.problem}) + "\n")

        yield write


async def _lists_sync(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.lists.runner import sync_once
    from dncgate.lists.sync import SyncError, exit_code_of

    if args.nice:
        os.nice(args.nice)  # serve's periodic sync: leave the CPU to the calls first
    progress = _progress_numbers(sys.stderr) if sys.stderr.isatty() else None

    async def run(store: ListStore) -> int:
        try:
            lines = await sync_once(config, store, force=args.force, progress=progress)
        except SyncError as exc:
            print(f"dncgate: sync failed ({exc.cause}): {exc}", file=sys.stderr)
            return exit_code_of(exc.cause)  # serve's isolated sync counts the failure by its cause
        if progress is not None:
            sys.stderr.write("\n")
        print("\n".join(lines))
        return 0

    return await _with_store(config, run, create=True)


def _progress_numbers(stream: TextIO) -> Callable[[int], None]:
    def show(loaded: int) -> None:
        stream.write(f"\rloading: {loaded:,} numbers written")
        stream.flush()

    return show


async def _lists_stats(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        stats = await store.stats()
        if not stats:
            print("no lists loaded")
        for s in stats:
            print(f"{s.list_name:<24} version={s.version or '-':<8} numbers={s.count:<12,} "
                  f"prefix_rules={s.prefix_rules:<6} loaded_at={s.loaded_at or '-'}  {s.detail}")
        return 0

    return await _with_store(config, run)


async def _lists_rule(args: argparse.Namespace, config: Settings) -> int:
    config.configured_list(args.list_name)
    tenant = config.tenants.get(args.list_name.partition(":")[2]) if args.list_name.startswith("tenant:") else None
    region = tenant.dial_plan.region if tenant is not None else config.national_region  # national forms read here
    digits = rule_prefix(args.prefix, region, force=args.force or args.action == "remove")

    async def run(store: ListStore) -> int:
        before = await stats_of(store, args.list_name)
        await store.set_prefix_rule(args.list_name, digits, present=args.action == "add")
        after = await stats_of(store, args.list_name)
        if (after.prefix_rules if after else 0) == (before.prefix_rules if before else 0):
            if args.action == "remove":
                print(f"dncgate: {args.list_name}: no prefix rule +{digits} to remove", file=sys.stderr)
                return 1
            print(f"{args.list_name}: prefix +{digits} was already there")
            return 0
        print(f"{args.list_name}: prefix +{digits} {'added' if args.action == 'add' else 'removed'}")
        return 0

    return await _with_store(config, run, create=True)


async def _audit_tail(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        for record in await store.audit_tail(args.n):
            print(record.to_json())
        return 0

    return await _with_store(config, run)


async def _audit_export(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        count = 0
        try:
            async for record in store.audit_export():
                out.write(record.to_json() + "\n")
                count += 1
        finally:
            if args.output:
                out.close()
        print(f"exported {count:,} records", file=sys.stderr)
        return 0

    return await _with_store(config, run)


async def _init(args: argparse.Namespace, config: Settings) -> int:
    store = config.store
    existed = store.backend == "sqlite" and store.path.is_file()

    async def run(opened: ListStore) -> int:
        await opened.ping()  # the first connection creates the file and its schema
        return 0

    await _with_store(config, run, create=True)
    if store.backend == "redis":
        print(f"redis store {store.url}: reachable (Redis keeps no schema to create)")
    else:
        print(f"sqlite store {store.path.absolute()}: {'already there, schema checked' if existed else 'created'}")
    return 0


async def _config_check(args: argparse.Namespace, config: Settings) -> int:
    print(f"configuration file: {config.path or 'none (built-in defaults)'}")
    print(f"configuration OK ({config.source})")
    print(f"  store: {config.store.backend} "
          f"{config.store.path if config.store.backend == 'sqlite' else config.store.url} "
          f"timeout {config.store.timeout_ms} ms")
    for door in ("agi", "esl", "http"):
        listen = getattr(config, door)
        print(f"  {door}: {'on' if listen.enabled else 'off'} {listen.host}:{listen.port}")
    from dncgate.feeds import asterisk_feed_of, freeswitch_feed_of

    ami, esl_feed = asterisk_feed_of(config.ami), freeswitch_feed_of(config.esl_feed)
    print(f"  ami feed: {f'on {ami.manager.host}:{ami.manager.port} as {ami.manager.username}' if ami else 'off'}")
    print(f"  esl feed: {f'on {esl_feed.host}:{esl_feed.port}' if esl_feed else 'off'}")
    if changed := _changed(config.esl):
        print("  esl handler: " + ", ".join(f"{key} {value!r}" for key, value in changed.items()))
    for name, t in sorted(config.tenants.items()):
        print(f"  tenant {name}: region {t.dial_plan.region}, {t.mode.value}, {t.list_policy.value}, "
              f"default {t.default_purpose.value}, reject {t.reject_sip_code}, "
              f"check failed {t.check_failed_sip_code} (marketing {t.marketing_on_failure.value}, "
              f"service {t.service_on_failure.value})")
    return 0


async def _config_sample(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.settings.reference import sample

    sys.stdout.write(sample())
    return 0


async def _config_reference(args: argparse.Namespace, config: Settings) -> int:
    from dncgate.settings.reference import reference

    sys.stdout.write(reference())
    return 0


def _changed(table: EslSettings) -> dict[str, object]:
    """The handler keys of ``[esl]`` that differ from their defaults."""
    default = EslSettings()
    return {f.encode_name: getattr(table, f.name) for f in msgspec.structs.fields(table)
            if f.name not in Listener.__struct_fields__ and getattr(table, f.name) != getattr(default, f.name)}


if __name__ == "__main__":
    sys.exit(main())
