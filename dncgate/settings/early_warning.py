"""``[early_warning]`` and ``[early_warning.tenants.NAME]``: the analyser, and each tenant's rules.

Every default with its reason:

- ``enabled = false``: the analyser opens a state file and acts on cases: asked for, not assumed.
- ``path = "dncgate-early-warning.sqlite3"``: the embedded store of window state and alerts (its own
  file: the list store may be Redis); relative to the working directory, like the store's.
- ``checkpoint_interval_s = 30``: a restart loses at most this long of window counts (the alerts
  themselves are written when raised); short enough that a campaign's evidence survives a restart.
- ``max_originators = 200000``: ~2 KB each (``early_warning.windows``), ~400 MB at most.
- ``sla_check_interval_s = 300``: complaint deadlines are days long; 5 minutes is early enough.
- ``transport = "process"``: each gate analyses what it decides; ``"redis"`` (several switches,
  one view) needs the Redis store and is asked for, not assumed.
- ``[early_warning.stream]``: ``partitions = 16`` (a handful of analysers share them evenly; every
  gate must say the same), ``lease_s = 15`` (a dead analyser's partitions move after at most this
  long, renewed every third of it), ``maxlen = 200000`` facts' batches kept per partition (~minutes
  of a busy partition: an analyser that is down longer loses the oldest), ``queue = 50000`` facts
  a gate holds for Redis (then it drops and counts them), ``batch = 200`` facts per stream entry
  and entries per read.
- per tenant ``key = "account"``: the switch's account code names who pays for the traffic; a
  caller ID can be spoofed or rotated, a trunk carries many customers.
- ``zone = "UTC"``, ``night = "21:00-08:00"``: the local day of night_share and of rule hours (TCPA:
  no marketing before 08:00 or after 21:00 local time).
- ``default_rules = true``: ``early_warning.rules.DEFAULT_RULES`` (each with its source there); a
  rule named like a default changes only the keys it sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta, field

from dncgate.hours import parse_days
from dncgate.settings.table import Table

if TYPE_CHECKING:  # imported when a watch is built: classic AGI reads the settings on every call
    from dncgate.early_warning.analyser import Watch
    from dncgate.early_warning.rules import Rule

_SPAN = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
Found = Iterator[tuple[str, str]]


class RuleSettings(Table, frozen=True):
    """``[early_warning.tenants.NAME.rules.RULE]``: one rule; a key not set keeps the default rule's
    (when RULE names a default rule, ``early_warning.rules.DEFAULT_RULES``)."""

    feature: str | None = None  # what it watches: attempts_per_min, concurrent, asr, acd_s, short6_share, ...
    warning: float | None = None  # the warning threshold
    critical: float | None = None  # the critical threshold (worse than warning)
    below: bool | None = None  # crossed downwards (a minimum ratio or duration)
    min_attempts: Annotated[int, Meta(ge=0)] | None = None  # the volume in its window below which it is silent
    hours: str | None = None  # local "HH:MM-HH:MM" it applies in (may cross midnight); "" always
    weekdays: tuple[str, ...] | None = None  # mon..sun it applies on; () every day
    report_only: bool | None = None  # alert, but open no case (run a new rule so first)
    enabled: bool = True  # false: drop the default rule of this name


class TenantWarningSettings(Table, frozen=True):
    """``[early_warning.tenants.NAME]``: how one tenant's originators are watched."""

    key: Literal["account", "trunk", "caller_id", "entity"] = "account"  # which field of a call is the originator
    zone: str = "UTC"  # the tenant's local time (night_share, rule hours and weekdays)
    night: str = "21:00-08:00"  # local night, for night_share
    default_rules: bool = True  # start from the default rules (else only the rules given)
    rules: dict[str, RuleSettings] = field(default_factory=dict)


class StreamSettings(Table, frozen=True):
    """``[early_warning.stream]``: the Redis streams of ``transport = "redis"`` (``store.redis.fact_stream``)."""

    partitions: Annotated[int, Meta(ge=1, le=1024)] = 16  # originators are hashed over these (same on every gate)
    # an analyser's hold on a partition; a dead one's partitions move after at most this long
    lease: Annotated[float, Meta(ge=1.0, le=600.0)] = field(default=15.0, name="lease_s")
    maxlen: Annotated[int, Meta(ge=100, le=100_000_000)] = 200_000  # entries kept per partition (XADD MAXLEN ~)
    queue: Annotated[int, Meta(ge=100, le=10_000_000)] = 50_000  # facts a gate holds for Redis, then drops
    batch: Annotated[int, Meta(ge=1, le=10_000)] = 200  # facts per stream entry, and entries per read
    # how often a gate sends what it holds (the analysers see a fact at most this much later)
    flush_interval: Annotated[float, Meta(ge=0.001, le=10.0)] = field(default=0.05, name="flush_interval_s")


class EarlyWarningSettings(Table, frozen=True):
    """``[early_warning]``: the analyser in ``serve`` (call facts per originator, rules, alerts to cases)."""

    enabled: bool = False  # watch the gate's decisions and the call feeds' records
    path: Path = Path("dncgate-early-warning.sqlite3")  # SQLite file of window state and alerts
    # how often the window state is written (a restart loses at most this long of counts)
    checkpoint_interval: Annotated[float, Meta(ge=1.0, le=3600.0)] = field(default=30.0,
                                                                             name="checkpoint_interval_s")
    max_originators: Annotated[int, Meta(ge=100, le=10_000_000)] = 200_000  # kept in memory (~3.6 KB each)
    # how often complaint deadlines are checked (an alert before one lapses)
    sla_check_interval: Annotated[float, Meta(ge=0.05, le=86_400.0)] = field(default=300.0,
                                                                             name="sla_check_interval_s")
    alert_queue: Annotated[int, Meta(ge=10, le=1_000_000)] = 10_000  # alerts waiting for enforcement
    # process: each gate analyses its own calls; redis: every gate's facts to one view over Redis streams
    transport: Literal["process", "redis"] = "process"
    stream: StreamSettings = field(default_factory=StreamSettings)
    tenants: dict[str, TenantWarningSettings] = field(default_factory=dict)


def span(text: str) -> tuple[int, int]:
    """``"21:00-08:00"`` -> local minutes (1260, 480). Raises ``ValueError``."""
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM (like 21:00-08:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: not a time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{text!r}: an empty span")
    return start, end


def _rule(name: str, table: RuleSettings) -> Rule:
    """The rule a table makes (over the default of that name). Raises ``ValueError``."""
    from dncgate.early_warning.rules import DEFAULT_RULES, Feature, Rule

    base = next((rule for rule in DEFAULT_RULES if rule.name == name), None)
    if base is None:
        if table.feature is None:
            raise ValueError("feature: required for a rule that is not a default one")
        base = Rule(name, Feature(table.feature))
    rule = replace(base, feature=Feature(table.feature) if table.feature is not None else base.feature)
    for key in ("warning", "critical", "below", "min_attempts", "report_only"):
        value = getattr(table, key)
        if value is not None:
            rule = replace(rule, **{key: value})
    if table.hours is not None:
        rule = replace(rule, hours=span(table.hours) if table.hours else None)
    if table.weekdays is not None:
        rule = replace(rule, weekdays=parse_days(table.weekdays) if table.weekdays else None)
    if rule.warning is None and rule.critical is None:
        raise ValueError("warning or critical: at least one threshold")
    if rule.warning is not None and rule.critical is not None and \
            (rule.critical > rule.warning if rule.below else rule.critical < rule.warning):
        raise ValueError(f"critical {rule.critical:g} is {'above' if rule.below else 'below'} warning "
                         f"{rule.warning:g}: critical is the worse one")
    return rule


def watch_of(tenant: str, table: TenantWarningSettings) -> Watch:
    """One tenant's ``Watch``. Raises ``ValueError`` naming what is wrong."""
    from dncgate.early_warning.alerts import OriginatorKind
    from dncgate.early_warning.analyser import Watch
    from dncgate.early_warning.rules import DEFAULT_RULES

    rules = {rule.name: rule for rule in DEFAULT_RULES} if table.default_rules else {}
    for name, rule_table in table.rules.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"rules.{name}: a rule's name is lower case letters, digits and _")
        if not rule_table.enabled:
            rules.pop(name, None)
            continue
        try:
            rules[name] = _rule(name, rule_table)
        except ValueError as exc:
            raise ValueError(f"rules.{name}: {exc}") from None
    try:
        ZoneInfo(table.zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"zone: {table.zone!r} is not a time zone") from None
    try:
        night = span(table.night)
    except ValueError as exc:
        raise ValueError(f"night: {exc}") from None
    return Watch(tenant, OriginatorKind(table.key), tuple(rules.values()), table.zone, night)


def check(table: EarlyWarningSettings, tenants: Iterable[str]) -> Found:
    """Every problem of every tenant's table (each rule on its own)."""
    known = set(tenants)
    for name, tenant in table.tenants.items():
        if name not in known:
            yield f"tenants.{name}", f"no tenant {name!r} in [tenants]"
            continue
        try:
            watch_of(name, replace_rules(tenant))
        except ValueError as exc:
            yield f"tenants.{name}", str(exc)
            continue
        for rule, rule_table in tenant.rules.items():
            try:
                watch_of(name, TenantWarningSettings(rules={rule: rule_table}))
            except ValueError as exc:
                yield f"tenants.{name}", str(exc)


def replace_rules(tenant: TenantWarningSettings) -> TenantWarningSettings:
    """The table without its rules (its zone and night checked on their own)."""
    return TenantWarningSettings(key=tenant.key, zone=tenant.zone, night=tenant.night)


def watches(table: EarlyWarningSettings, tenants: Iterable[str]) -> Mapping[str, Watch]:
    """Every tenant's watch (a tenant without its own table: the defaults). Checked by ``check``."""
    default = TenantWarningSettings()
    return {name: watch_of(name, table.tenants.get(name, default)) for name in tenants}
