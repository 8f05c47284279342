"""``dncgate consent grant|revoke|export|verify|purge`` and ``dncgate api-key new``.

A command opens the configured store's ledger, so it sits above ``consent`` and ``store`` in the
``cli`` room: inside ``consent`` it would make the consent room import the store backends that
implement its ledger. ``grant`` and ``revoke`` record through the API's own path
(``consent.ledger.record_consent``), with the command line's evidence: the operator's OS user
captured it, the command line and the time are in the record.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dncgate.api.keys import hash_key, new_key
from dncgate.api.records import consent_json, record_json
from dncgate.app import open_app
from dncgate.cli import codes
from dncgate.cli.base import command, group, print_json
from dncgate.consent.export import FORMATS, ExportError, ExportManifest, export, manifest_path, verify
from dncgate.consent.ledger import record_consent
from dncgate.consent.model import Action, Channel, Evidence, LedgerError, LedgerEvent, check_name, parse_time
from dncgate.numbers import Subscriber, normalise
from dncgate.settings import Settings


def add_commands(sub: Any) -> None:
    consent = group(sub, "consent", "the consent ledger")
    _add_record(command(consent, "grant", _grant, "record a callee's consent to calls from an entity, with its "
                                                   "evidence"), grant=True)
    _add_record(command(consent, "revoke", _revoke, "record the withdrawal of a consent (all of it, or some "
                                                     "categories)"), grant=False)
    out = command(consent, "export", _export, "a tenant's ledger for a regulator, with a manifest proving it complete")
    out.add_argument("--tenant", required=True, help="whose ledger")
    out.add_argument("--format", choices=FORMATS, default="jsonl", help="the file's format (default: jsonl)")
    out.add_argument("--output", type=Path, required=True, help="the file; the manifest goes to FILE.manifest.json")
    check = command(consent, "verify", _verify, "check an export against its manifest (hash chain and file hash)")
    check.add_argument("file", type=Path, help="the exported file")
    check.add_argument("--manifest", type=Path, help="default: FILE.manifest.json")
    purge = command(consent, "purge", _purge,
                    "delete records older than --before (refused inside the retention period); the purge is recorded")
    purge.add_argument("--tenant", required=True, help="whose ledger")
    purge.add_argument("--before", required=True, help="ISO 8601 time with offset, like 2026-01-01T00:00:00Z")
    purge.add_argument("--by", required=True, help="who orders the purge (recorded in the ledger)")
    keys = group(sub, "api-key", "HTTP API keys")
    key = command(keys, "new", _new_key, "print a new API key and the configuration entry holding its hash")
    key.add_argument("--tenant", required=True, help="the tenant the key acts for")
    key.add_argument("--id", default="", help="key id (default: TENANT-api)")


def _add_record(parser: argparse.ArgumentParser, *, grant: bool) -> None:
    parser.add_argument("number", help="the callee, in any form it may be dialled (read through the tenant's "
                        "dial plan)")
    parser.add_argument("--tenant", required=True, help="whose ledger")
    parser.add_argument("--entity", required=True, help="who may call (or no longer): the calling business")
    parser.add_argument("--category", action="append", default=[], dest="categories", metavar="CATEGORY",
                        help="a category the consent covers (repeat for more; default: every marketing category)"
                        if grant else "a category withdrawn (repeat for more; default: the whole consent)")
    if grant:
        parser.add_argument("--valid-from", help="ISO 8601 time with offset the consent starts (default: now)")
        parser.add_argument("--expires-at", help="ISO 8601 time with offset the consent ends (default: never)")
    parser.add_argument("--channel", required=True, choices=[c.value for c in Channel],
                        help="how the callee gave it (a signed form: paper)")
    parser.add_argument("--source", required=True, help="where it came from: the caller ID, a form's reference...")
    parser.add_argument("--shown", required=True, help="the text shown or read to the callee, or its template's id")
    parser.add_argument("--captured-at", help="ISO 8601 time with offset it was given (default: now)")
    parser.add_argument("--document-sha256", default="", help="the SHA-256 of a recording or scan, if any")


async def _grant(args: argparse.Namespace, config: Settings) -> int:
    return await _record(args, config, Action.GRANT)


async def _revoke(args: argparse.Namespace, config: Settings) -> int:
    return await _record(args, config, Action.REVOKE)


def operator() -> str:
    """Who runs this command: the OS user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container's)
        return f"uid {os.getuid()}"


def cli_evidence(args: argparse.Namespace, action: Action, now: datetime) -> Evidence:
    """The evidence of a consent recorded from the command line: captured by the OS user."""
    captured_at = parse_time(args.captured_at, "--captured-at") or now
    return Evidence(channel=Channel(args.channel), captured_at=captured_at, source=args.source, shown=args.shown,
                    captured_by=f"{operator()} (dncgate consent {action.value})", document_sha256=args.document_sha256)


def consent_event(args: argparse.Namespace, config: Settings, action: Action, argv: list[str]) -> LedgerEvent:
    tenant = config.configured_tenant(check_name("tenant", args.tenant))
    callee = normalise(args.number[:64], tenant.dial_plan)
    if not isinstance(callee, Subscriber):
        raise LedgerError(f"{args.number[:64]!r} is not a subscriber number in {tenant.dial_plan.region}")
    now = datetime.now(UTC)
    grant = action is Action.GRANT
    return LedgerEvent(
        tenant=tenant.name, action=action, callee=callee.e164, entity=check_name("entity", args.entity),
        categories=tuple(dict.fromkeys(args.categories)),
        valid_from=parse_time(args.valid_from, "--valid-from") if grant else None,
        expires_at=parse_time(args.expires_at, "--expires-at") if grant else None,
        evidence=cli_evidence(args, action, now),
        detail=f"cli: user {operator()} at {now.isoformat(timespec='seconds')}: {shlex.join(argv)}",
    )


async def _record(args: argparse.Namespace, config: Settings, action: Action) -> int:
    event = consent_event(args, config, action, args.command_line)
    async with open_app(config, ledger=True) as app:
        sealed, state = await record_consent(app.consent_ledger(), event)
    print_json({"record": record_json(sealed), "consent": consent_json(sealed.entity, state)}, sys.stdout)
    return codes.OK


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
        return codes.REFUSED
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
