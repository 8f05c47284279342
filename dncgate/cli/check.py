"""``dncgate check NUMBER``: the decision for one number, and why; the exit code says it too
(``dncgate.cli.codes``: 0 allow, 1 reject, 3 the check failed)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dncgate.app import open_app
from dncgate.cli import codes
from dncgate.cli.base import add_json, command, print_json
from dncgate.gate import CheckRequest, CheckResult
from dncgate.model import FAILURE_REASONS, Originator, Purpose, Verdict
from dncgate.settings import Settings
from dncgate.store.errors import StoreError, StoreMissing


def add_commands(sub: Any) -> None:
    check = command(sub, "check", _check, "print the decision for one number, and why (exit code: 0 allow, "
                    "1 reject, 3 the check failed)")
    check.add_argument("number", help="the number as a switch would hand it over: +E.164, national, "
                       "with an international or technical prefix, or a sip:/tel: URI")
    check.add_argument("--tenant", help="whose dial plan and policy (default: the tenant named default)")
    check.add_argument("--purpose", type=str.lower, choices=[p.value for p in Purpose],
                       help="service or marketing (default: the tenant's)")
    check.add_argument("--category", help="the marketing category the call is for, one of [consent] categories "
                       "(consents and declines name it)")
    check.add_argument("--account", default="cli", help="the originator's account recorded in the audit "
                       "(default: cli)")
    check.add_argument("--entity", default="", help="the calling business, whose consents count (as the "
                       "dialplan's DNCGATE_ENTITY)")
    add_json(check)


def exit_code_of(result: CheckResult) -> int:
    """``codes.CHECK_FAILED`` when the check could not be completed, else the verdict's code."""
    if result.decision.reason in FAILURE_REASONS:
        return codes.CHECK_FAILED
    return codes.ALLOW if result.decision.verdict is Verdict.ALLOW else codes.REJECT


def as_json(result: CheckResult) -> dict[str, Any]:
    """The decision as the keys ``check --json`` prints, every key always there (None when absent)."""
    d, record = result.decision, result.record
    return {
        "verdict": d.verdict.value, "reason": d.reason.value, "outcome": d.outcome.value, "mode": d.mode.value,
        "tenant": record.tenant, "purpose": record.purpose, "category": record.category,
        "dialled": record.dialled, "callee": record.callee or None, "list": d.list_name,
        "list_version": d.list_version, "sip_code": d.sip_code, "announcement": d.announcement or None,
        "detail": d.detail or None, "decision_id": result.decision_id, "latency_us": record.latency_us,
        "exit_code": exit_code_of(result),
    }


def undecided_json(args: argparse.Namespace, why: str) -> dict[str, Any]:
    """``check --json`` when no decision could be made (the store could not be opened): the keys of
    ``as_json``, every decision key None, ``detail`` saying why."""
    return {
        "verdict": None, "reason": None, "outcome": None, "mode": None, "tenant": args.tenant,
        "purpose": args.purpose, "category": args.category, "dialled": args.number, "callee": None, "list": None,
        "list_version": None, "sip_code": None, "announcement": None, "detail": why, "decision_id": None,
        "latency_us": None, "exit_code": codes.CHECK_FAILED,
    }


async def _check(args: argparse.Namespace, config: Settings) -> int:
    from structlog import get_logger

    if args.tenant is not None:
        config.configured_tenant(args.tenant)  # a typo, not a call to decide: ValueError, exit 2
    request = CheckRequest(
        dialled=args.number, door="cli", tenant=args.tenant, purpose=args.purpose,
        category=config.configured_category(args.category),
        originator=Originator(account=args.account, entity=args.entity),
    )
    try:
        async with open_app(config, audit_queue_size=16) as app:
            result = await app.gate.check(request, get_logger("dncgate.cli"))
    except StoreMissing:
        raise  # a configuration error (exit 2): the path names no store
    except StoreError as exc:  # the store could not even be opened: no decision at all
        print(f"dncgate: check failed: store error: {exc}", file=sys.stderr)
        if args.json:  # still one object with the same keys: no verdict, why, and the exit code
            print_json(undecided_json(args, f"store error: {exc}"), sys.stdout)
        return codes.CHECK_FAILED
    if args.json:
        print_json(as_json(result), sys.stdout)
    else:
        _print_text(result)
    return exit_code_of(result)


def _print_text(result: CheckResult) -> None:
    d = result.decision
    print(f"{d.verdict.value.upper()}  reason={d.reason.value}  outcome={d.outcome.value}  mode={d.mode.value}")
    print(f"  callee={result.record.callee or '-'}  list={d.list_name or '-'}  version={d.list_version or '-'}")
    if d.sip_code:
        print(f"  sip={d.sip_code}  announcement={d.announcement or '-'}")
    if d.detail:
        print(f"  detail={d.detail}")
    print(f"  decision_id={result.decision_id}  latency_us={result.record.latency_us}")
