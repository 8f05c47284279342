"""``dncgate consent export|verify|purge`` and ``dncgate api-key new`` (registered by ``dncgate.cli``).

A command opens the configured store's ledger, so it sits above ``consent`` and ``store``, beside
``cli``: inside ``consent`` it would make the consent room import the store backends that
implement its ledger.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from dncgate.api.keys import hash_key, new_key
from dncgate.app import open_app
from dncgate.consent.export import FORMATS, ExportError, ExportManifest, export, manifest_path, verify
from dncgate.consent.model import LedgerError, check_name, parse_time
from dncgate.settings import Settings

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
AddCommand = Callable[[Any, str, Command, str], argparse.ArgumentParser]


def add_commands(sub: Any, command: AddCommand) -> None:
    consent = sub.add_parser("consent", help="the consent ledger").add_subparsers(required=True, metavar="ACTION")
    out = command(consent, "export", _export, "a tenant's ledger for a regulator, with a manifest proving it complete")
    out.add_argument("--tenant", required=True)
    out.add_argument("--format", choices=FORMATS, default="jsonl")
    out.add_argument("--output", type=Path, required=True, help="the file; the manifest goes to FILE.manifest.json")
    check = command(consent, "verify", _verify, "check an export against its manifest (hash chain and file hash)")
    check.add_argument("file", type=Path)
    check.add_argument("--manifest", type=Path, help="default: FILE.manifest.json")
    purge = command(consent, "purge", _purge,
                    "delete records older than --before (refused inside the retention period); the purge is recorded")
    purge.add_argument("--tenant", required=True)
    purge.add_argument("--before", required=True, help="ISO 8601 time with offset, like 2026-01-01T00:00:00Z")
    purge.add_argument("--by", required=True, help="who orders the purge (recorded in the ledger)")
    keys = sub.add_parser("api-key", help="HTTP API keys").add_subparsers(required=True, metavar="ACTION")
    key = command(keys, "new", _new_key, "print a new API key and the configuration entry holding its hash")
    key.add_argument("--tenant", required=True)
    key.add_argument("--id", default="", help="key id (default: TENANT-api)")


async def _export(args: argparse.Namespace, config: Settings) -> int:
    config.configured_tenant(args.tenant)  # else an empty export whose manifest looks complete
    async with open_app(config, ledger=True) as app:
        manifest = await export(app.consent_ledger(), check_name("tenant", args.tenant), args.format, args.output)
    print(manifest.to_json())
    print(f"wrote {args.output} and {manifest_path(args.output)}", file=sys.stderr)
    return 0


async def _verify(args: argparse.Namespace, config: Settings) -> int:
    path = args.manifest or manifest_path(args.file)
    try:
        count = verify(args.file, ExportManifest.from_json(path.read_text(encoding="utf-8")))
    except (ExportError, ValueError, KeyError, TypeError) as exc:
        print(f"dncgate: {args.file}: NOT complete: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: complete, {count} records, chain verified")
    return 0


async def _purge(args: argparse.Namespace, config: Settings) -> int:
    before = parse_time(args.before, "--before")
    if before is None:
        raise LedgerError("--before: required")
    config.configured_tenant(args.tenant)
    async with open_app(config, ledger=True) as app:
        record = await app.consent_ledger().purge(check_name("tenant", args.tenant), before, by=args.by)
    print(record.to_json())
    return 0


async def _new_key(args: argparse.Namespace, config: Settings) -> int:
    tenant = check_name("tenant", args.tenant)
    key = new_key()
    print(f"API key (shown once, give it to the tenant): {key}", file=sys.stderr)
    print(f'[api.keys.{args.id or tenant + "-api"}]\ntenant = "{tenant}"\nsha256 = "{hash_key(key)}"')
    return 0
