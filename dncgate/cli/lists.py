"""``dncgate lists load|stats|sync|rule``: load and inspect the lists."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from dncgate.cli import codes
from dncgate.cli.base import add_json, command, group, print_json, with_store
from dncgate.cli.progress import add_progress, load_progress, sync_progress
from dncgate.lists.formats import FORMATS, LineError
from dncgate.lists.loader import LoadRefused, LoadSummary, load_file
from dncgate.numbers import DialPlan, rule_prefix
from dncgate.settings import Settings
from dncgate.store.protocol import ListStats, ListStore, stats_of

SHOWN_ERRORS = 20


def add_commands(sub: Any) -> None:
    lists = group(sub, "lists", "load and inspect lists")
    load = command(lists, "load", _lists_load, "load a list file (one number a line or CSV; gzip)")
    load.add_argument("--list", required=True, dest="list_name", help="national or tenant:NAME")
    load.add_argument("file", type=Path, help="the list file (plain, gzip or zip)")
    load.add_argument("--format", default="auto", choices=FORMATS,
                      help="ftc: the US FTC download; tps: the UK TPS file (default: auto, lines or CSV)")
    load.add_argument("--delta", action="store_true", help="apply adds and removes instead of replacing")
    load.add_argument("--region", help="region for numbers not in +E.164 form (default: [national] region)")
    load.add_argument("--errors", type=Path, help="write every invalid line here (JSON lines)")
    load.add_argument("--allow-empty", action="store_true",
                      help="replace the list even when the file has no valid numbers (empties it)")
    load.add_argument("--force", action="store_true",
                      help="replace the list even when that shrinks it by more than [sync] max_shrink_percent")
    add_progress(load)
    stats = command(lists, "stats", _lists_stats, "show every list's version and size")
    add_json(stats)
    sync = command(lists, "sync", _lists_sync, "sync the list once from the [sync] source (snapshot and deltas)")
    sync.add_argument("--force", action="store_true",
                      help="load a snapshot even when it shrinks the list by more than [sync] max_shrink_percent")
    sync.add_argument("--accept-older-standings", action="store_true",
                      help="apply the carrier's standings ([sync] standings_tenant) even when their version is "
                           "older than the one applied (the carrier was restored from a backup)")
    sync.add_argument("--nice", type=int, default=0, choices=range(20), metavar="N",
                      help="lower this process's CPU priority by N first (serve's periodic sync uses 10)")
    add_progress(sync)
    rule = command(lists, "rule", _lists_rule, "add or remove a prefix rule (block +86170 wholesale)")
    rule.add_argument("action", choices=["add", "remove"], help="add the rule, or remove it")
    rule.add_argument("--list", required=True, dest="list_name", help="national or tenant:NAME")
    rule.add_argument("prefix", help="+86170 (E.164), or national in the list's region (170 in CN)")
    rule.add_argument("--force", action="store_true", help="take a prefix no longer than a country code")


async def _lists_load(args: argparse.Namespace, config: Settings) -> int:
    config.configured_list(args.list_name)
    region = (args.region or config.national_region).upper()

    async def run(store: ListStore) -> int:
        refused: LoadRefused | None = None
        with load_progress(args.file, args.progress) as bars:
            try:
                with _errors_file(args.errors) as on_invalid:  # every bad line, written as it is found
                    summary = await load_file(
                        store, args.list_name, args.file, DialPlan(region=region), fmt=args.format,
                        delta=args.delta, allow_empty=args.allow_empty, max_shrink=config.sync.max_shrink,
                        force=args.force, on_invalid=on_invalid, progress=bars.read if bars else None,
                        written=bars.written if bars else None,
                    )
            except LoadRefused as exc:
                refused = exc
        if refused is not None:
            _report_invalid(refused.summary, args.errors, sys.stdout)
            print(f"dncgate: {refused}", file=sys.stderr)
            return codes.REFUSED
        _report(summary, args.errors, sys.stdout)
        return codes.OK

    return await with_store(config, run, create=True)


def _report(summary: LoadSummary, errors_path: Path | None, out: TextIO) -> None:
    what = f"added {summary.loaded:,}, removed {summary.removed:,}" if summary.mode == "delta" else (
        f"loaded {summary.loaded:,} as version {summary.version}"
        + (f" (replacing {summary.previous_version})" if summary.previous_version else "")
    )
    print(f"{summary.list_name}: read {summary.read:,} lines; {what}; duplicates {summary.duplicates:,}; "
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
    from dncgate.lists.runner import source_problem, sync_once
    from dncgate.lists.sync import SyncError

    if (problem := source_problem(config)) is not None:
        print(f"dncgate: {problem}", file=sys.stderr)
        return codes.USAGE  # before the store is opened: nothing created for a sync that cannot run
    if args.nice:
        os.nice(args.nice)  # serve's periodic sync: leave the CPU to the calls first

    async def run(store: ListStore) -> int:
        failed: SyncError | None = None
        with sync_progress(args.progress) as progress:
            try:
                lines = await sync_once(config, store, force=args.force, progress=progress,
                                        accept_older_standings=args.accept_older_standings)
            except SyncError as exc:
                failed = exc
        if failed is not None:
            print(f"dncgate: sync failed ({failed.cause}): {failed}", file=sys.stderr)
            return failed.exit_code  # serve's isolated sync counts the failure by its cause
        print("\n".join(lines))
        return codes.OK

    return await with_store(config, run, create=True)


def stats_json(stats: ListStats) -> dict[str, Any]:
    """One list as ``lists stats --json`` prints it (every key always there)."""
    return {"list": stats.list_name, "version": stats.version or None, "numbers": stats.count,
            "prefix_rules": stats.prefix_rules, "loaded_at": stats.loaded_at or None, "detail": stats.detail}


async def _lists_stats(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        stats = await store.stats()
        if args.json:
            for s in stats:
                print_json(stats_json(s), sys.stdout)
            return codes.OK
        if not stats:
            print("no lists loaded")
        for s in stats:
            print(f"{s.list_name:<24} version={s.version or '-':<8} numbers={s.count:<12,} "
                  f"prefix_rules={s.prefix_rules:<6} loaded_at={s.loaded_at or '-'}  {s.detail}")
        return codes.OK

    return await with_store(config, run)


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
                return codes.REFUSED
            print(f"{args.list_name}: prefix +{digits} was already there")
            return codes.OK
        print(f"{args.list_name}: prefix +{digits} {'added' if args.action == 'add' else 'removed'}")
        return codes.OK

    return await with_store(config, run, create=True)
