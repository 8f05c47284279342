"""``dncgate alerts list|ack`` and ``dncgate cases list|show|act|appeal|decide|export``.

Each command opens the same enforcement desk ``serve`` runs (``enforcement.desk.desk_of`` on the
configured case store, with the early warning's SQLite alert book) and calls the methods the HTTP
API's handlers call (``api.enforcement``): one implementation, two ways in. The actor recorded is
``cli:<user>`` (``--by`` to name someone else). Output is JSON, one object a line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from dncgate.app import open_app
from dncgate.cli import codes
from dncgate.cli.base import command, group
from dncgate.enforcement.casefile import case_file
from dncgate.enforcement.desk import EnforcementDesk, desk_of
from dncgate.enforcement.model import CaseAction, CaseState
from dncgate.enforcement.service import UnknownCase
from dncgate.errors import EnforcementError
from dncgate.model import Restriction
from dncgate.settings import Settings
from dncgate.store.factory import open_case_store
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore

ACTIONS = tuple(a.value for a in CaseAction if a not in (CaseAction.OPEN, CaseAction.ALERT, CaseAction.DELIVERY))
DRAIN_GRACE = 10.0  # the webhooks an action sends, and their delivery records


def add_commands(sub: Any) -> None:
    alerts = group(sub, "alerts", "early-warning alerts ([early_warning] enabled)")
    listing = _tenant(command(alerts, "list", _alerts_list, "the newest alerts, one JSON object a line"))
    listing.add_argument("--unacknowledged", action="store_true", help="only the alerts nobody acknowledged yet")
    listing.add_argument("--limit", type=int, default=100, help="how many, newest first (default: 100)")
    ack = _actor(_tenant(command(alerts, "ack", _alerts_ack, "acknowledge an alert (the first acknowledgement "
                                                             "stays)")))
    ack.add_argument("alert_id", help="the alert's id (alerts list)")

    cases = group(sub, "cases", "enforcement cases: what /v1/cases does, on the same desk")
    listing = _tenant(command(cases, "list", _cases_list, "the newest cases, one JSON object a line"))
    listing.add_argument("--state", choices=[s.value for s in CaseState], help="only cases in this state")
    listing.add_argument("--limit", type=int, default=100, help="how many, newest first (default: 100)")
    show = _tenant(command(cases, "show", _cases_show, "a case and every transition"))
    show.add_argument("case_id", help="the case's id (cases list)")
    act = _step(command(cases, "act", _cases_act, "take an action on a case (notice, restrict, suspend, ...)"))
    act.add_argument("action", choices=ACTIONS, metavar="ACTION", help="what to do: " + ", ".join(ACTIONS))
    act.add_argument("--urgent", action="store_true", help="suspend before the notice period has run (needs --reason)")
    act.add_argument("--per-minute", type=int, help="restrict: marketing calls a minute (default [enforcement])")
    act.add_argument("--concurrent", type=int, help="restrict: calls in progress (default [enforcement])")
    _step(command(cases, "appeal", _cases_appeal, "file the originator's appeal"))
    decide = _step(command(cases, "decide", _cases_decide, "decide an appeal"))
    decide.add_argument("decision", choices=["reinstate", "uphold"], help="grant the appeal, or keep the measure")
    export = _tenant(command(cases, "export", _cases_export, "the case file for a regulator (JSON, hash chain)"))
    export.add_argument("case_id", help="the case's id (cases list)")
    export.add_argument("--output", type=Path, help="a file (default: standard output)")


def _tenant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--tenant", default="default", help="whose alerts or cases (default: default)")
    return parser


def _actor(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--by", help="who acts (recorded; default cli:<user>)")
    return parser


def _step(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _actor(_tenant(parser))
    parser.add_argument("case_id", help="the case's id (cases list)")
    parser.add_argument("--reason", required=True, help="why (recorded in the case)")
    parser.add_argument("--key", help="idempotency key: the same key again does not act twice")
    return parser


def _who(args: argparse.Namespace) -> str:
    return str(args.by) if args.by else f"cli:{getpass.getuser()}"


@asynccontextmanager
async def _desk(config: Settings) -> AsyncIterator[EnforcementDesk]:
    """The desk serve runs, on the configured stores; webhooks drained before it closes."""
    book = SqliteEarlyWarningStore(config.early_warning.path) if config.early_warning.enabled else None
    async with open_app(config, audit_queue_size=16) as app:
        store = open_case_store(config.store)
        desk = desk_of(config.enforcement, config.tenants, store, app.store, clock=app.clock, alerts=book)
        try:
            yield desk
        finally:
            try:
                async with asyncio.timeout(DRAIN_GRACE):
                    await desk.cases.drain()
            except TimeoutError:
                print("dncgate: a webhook is still in flight; its delivery is not recorded", file=sys.stderr)
            await store.close()
            if book is not None:
                await book.close()


def _print(data: Any) -> None:
    print(json.dumps(data, sort_keys=True, ensure_ascii=False))


async def _guarded(args: argparse.Namespace, config: Settings, work: Callable[[EnforcementDesk], Any]) -> int:
    if args.tenant not in config.tenants:
        print(f"dncgate: no tenant {args.tenant!r} in the configuration", file=sys.stderr)
        return codes.USAGE
    try:
        async with _desk(config) as desk:
            await work(desk)
    except UnknownCase as exc:
        print(f"dncgate: {exc}", file=sys.stderr)
        return codes.REFUSED
    except EnforcementError as exc:  # the case's state, or the notice period, does not allow it
        print(f"dncgate: refused: {exc}", file=sys.stderr)
        return codes.REFUSED
    return codes.OK


async def _guarded_alerts(args: argparse.Namespace, config: Settings,
                          work: Callable[[EnforcementDesk], Any]) -> int:
    if not config.early_warning.enabled:
        print("dncgate: [early_warning] is not enabled: no alerts are kept on disk", file=sys.stderr)
        return codes.USAGE
    return await _guarded(args, config, work)


async def _alerts_list(args: argparse.Namespace, config: Settings) -> int:
    async def work(desk: EnforcementDesk) -> None:
        for alert, by in await desk.alerts.alerts(args.tenant, unacknowledged=args.unacknowledged,
                                                  limit=max(1, min(args.limit, 10_000))):
            _print({**alert.as_dict(), "acknowledged_by": by})
    return await _guarded_alerts(args, config, work)


async def _alerts_ack(args: argparse.Namespace, config: Settings) -> int:
    async def work(desk: EnforcementDesk) -> None:
        found = await desk.alerts.acknowledge(args.tenant, args.alert_id, _who(args))
        if found is None:
            raise UnknownCase(f"no alert {args.alert_id!r} in tenant {args.tenant}")
        _print({"alert": found[0].as_dict(), "acknowledged_by": found[1]})
    return await _guarded_alerts(args, config, work)


async def _cases_list(args: argparse.Namespace, config: Settings) -> int:
    async def work(desk: EnforcementDesk) -> None:
        state = CaseState(args.state) if args.state else None
        for case in await desk.cases.store.cases(args.tenant, state=state, limit=max(1, min(args.limit, 10_000))):
            _print(case.as_dict())
    return await _guarded(args, config, work)


async def _cases_show(args: argparse.Namespace, config: Settings) -> int:
    async def work(desk: EnforcementDesk) -> None:
        case = await desk.cases.case(args.tenant, args.case_id)
        _print({"case": case.as_dict(),
                "transitions": [s.as_dict() async for s in desk.cases.store.transitions(args.tenant, case.case_id)]})
    return await _guarded(args, config, work)


async def _act(args: argparse.Namespace, config: Settings, action: CaseAction) -> int:
    async def work(desk: EnforcementDesk) -> None:
        restriction = None
        if action is CaseAction.RESTRICT and (args.per_minute is not None or args.concurrent is not None):
            policy = desk.cases.policy.restriction
            restriction = Restriction(policy.per_minute if args.per_minute is None else args.per_minute,
                                      policy.concurrent if args.concurrent is None else args.concurrent)
        step = await desk.cases.act(args.tenant, args.case_id, action, actor=_who(args), reason=args.reason,
                                    urgent=getattr(args, "urgent", False), key=args.key and f"cli:{args.key}",
                                    restriction=restriction)
        _print({"case": step.case.as_dict(), "transition": step.transition.as_dict(), "replayed": step.replayed})
    return await _guarded(args, config, work)


async def _cases_act(args: argparse.Namespace, config: Settings) -> int:
    return await _act(args, config, CaseAction(args.action))


async def _cases_appeal(args: argparse.Namespace, config: Settings) -> int:
    return await _act(args, config, CaseAction.APPEAL)


async def _cases_decide(args: argparse.Namespace, config: Settings) -> int:
    return await _act(args, config, CaseAction(args.decision))


async def _cases_export(args: argparse.Namespace, config: Settings) -> int:
    async def work(desk: EnforcementDesk) -> None:
        case = await desk.cases.case(args.tenant, args.case_id)
        document = json.dumps(await case_file(desk.cases.store, case), sort_keys=True, ensure_ascii=False, indent=1)
        if args.output is None:
            print(document)
        else:
            args.output.write_text(document + "\n", encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
    return await _guarded(args, config, work)
