"""What a type cannot say: region codes, patterns, placeholders, one key against another.

Each check adds its problems to a ``Problems`` and returns the table normalised (region codes in
upper case, hashes in lower case), so every problem of a file is reported at once.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import msgspec

from dncgate.hours import CallingHours, parse_days, parse_overrides, parse_window
from dncgate.model import NATIONAL_LIST, REJECT_SIP_CODES, TENANT_NAME, AnalyticsBlock, TenantPolicy
from dncgate.numbers import DialPlan, dial_plan_problems
from dncgate.settings.enforcement import EnforcementSettings
from dncgate.settings.problems import Key, Problems
from dncgate.settings.schema import (
    MIN_RETENTION_MONTHS,
    ApiSettings,
    AsteriskFeedSettings,
    ConsentSettings,
    EslSettings,
    FeedSettings,
    FreeswitchFeedSettings,
    HoursSettings,
    IvrSettings,
    Listener,
    NationalSettings,
    ReplicaSettings,
    StoreSettings,
    SyncSettings,
    TenantSettings,
)

_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CODES = ", ".join(str(code) for code in sorted(REJECT_SIP_CODES))
Found = Iterator[tuple[str, str]]  # (key, what is wrong)
R = TypeVar("R", NationalSettings, SyncSettings)


def region_problem(region: str) -> str | None:
    import phonenumbers

    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        return f"{region!r} is not a region code phonenumbers knows (like CN, US, GB)"
    return None


def report(problems: Problems, key: Key, found: Found) -> None:
    for name, message in found:
        problems.add((*key, name) if name else key, message)


def national(table: NationalSettings) -> Found:
    if problem := region_problem(table.region):
        yield "region", problem


def listener(table: Listener) -> Found:
    for network in table.allow:
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            yield "allow", f"{network!r} is not a network or address ({exc})"


def esl(table: EslSettings) -> Found:
    yield from listener(table)
    if table.fallback_sip_code not in REJECT_SIP_CODES:
        yield "fallback_sip_code", f"{table.fallback_sip_code}: one of {_CODES}"
    for key, value, most in (("playback_deadline_s", table.playback_deadline, 300.0),
                             ("settle_deadline_s", table.settle_deadline, 30.0)):
        if not 0 < value <= most:
            yield key, f"{value}: must be above 0 and at most {most:g} seconds"
    if not re.fullmatch(r"[0-9*#+]*", table.strip_prefix):
        yield "strip_prefix", f"{table.strip_prefix!r}: only digits, *, # and +"
    try:
        table.transfer_to.format(number="1", destination="1", context="c")
    except (KeyError, IndexError, ValueError) as exc:
        yield "transfer_to", f"placeholders are {{number}}, {{destination}}, {{context}}: {exc}"
    if not re.fullmatch(r"[A-Za-z0-9]{1,8}", table.sound_ext):
        yield "sound_ext", f"{table.sound_ext!r} is not a file extension"


def consent(table: ConsentSettings) -> Found:
    if not table.categories:
        yield "categories", "at least one category is needed"
    for value in table.categories:
        if not _CATEGORY.fullmatch(value):
            yield "categories", f"category {value!r}: lowercase letters, digits and '_', starting with a letter"
    if len(set(table.categories)) != len(table.categories):
        yield "categories", "categories repeat"
    if table.retention_months < MIN_RETENTION_MONTHS:
        yield "retention_months", f"must be at least {MIN_RETENTION_MONTHS} (it can only be raised)"


def ivr(table: IvrSettings) -> Found:
    if not table.max_failures <= table.max_asks <= 200:
        yield "max_asks", f"must be between max_failures ({table.max_failures}) and 200"


def api(table: ApiSettings, tenants: Mapping[str, object]) -> Found:
    for key_id, entry in table.keys.items():
        if not _KEY_ID.fullmatch(key_id):
            yield f"keys.{key_id}", "a key id is 1-64 letters, digits, '_', '.' or '-'"
        if entry.tenant not in tenants:
            yield f"keys.{key_id}.tenant", f"{entry.tenant!r} is not a configured tenant"
        if not _HEX.fullmatch(entry.sha256.lower()):
            yield f"keys.{key_id}.sha256", "64 hex digits: the SHA-256 of the key (never the key itself)"
    hashes = [entry.sha256.lower() for entry in table.keys.values()]
    if len(set(hashes)) != len(hashes):
        yield "keys", "two keys have the same hash"


def sync(table: SyncSettings, tenants: Mapping[str, object]) -> Found:
    if table.standings_tenant and table.standings_tenant not in tenants:
        yield "standings_tenant", f"{table.standings_tenant!r} is not a configured tenant"
    if table.standings_tenant and table.source != "http":
        yield "standings_tenant", "the standings come from a carrier's feed: needs source = \"http\""
    if table.region and (problem := region_problem(table.region)):
        yield "region", problem
    if table.source == "http" and table.enabled and not table.url.startswith(("http://", "https://")):
        yield "url", "an http source needs an http:// or https:// URL"
    if table.auth_header and ":" not in table.auth_header:
        yield "auth_header", "expected 'Name: value', like 'Authorization: Bearer ...'"
    if table.public_key:
        try:
            key = base64.b64decode(table.public_key.strip(), validate=True)
        except (binascii.Error, ValueError):
            yield "public_key", "public key is not base64"
        else:
            if len(key) != 32:
                yield "public_key", f"public key has {len(key)} bytes: an Ed25519 key has 32"
    kind, _, tenant = table.list_name.partition(":")
    if table.list_name != "national" and not (kind == "tenant" and TENANT_NAME.fullmatch(tenant)):
        yield "list", (f"list name {table.list_name!r}: expected 'national' or 'tenant:NAME' "
                       "(NAME: letters, digits, _.-)")


def feed(table: FeedSettings, publish_dir: object) -> Found:
    if any(":" not in token or not token.partition(":")[2] for token in table.tokens):
        yield "tokens", "each entry is 'reseller:token'"
    if table.enabled and not table.tokens:
        yield "tokens", "the feed needs at least one reseller token"
    if table.enabled and publish_dir is None:
        yield "enabled", "needs sync.publish_dir (the directory the feed serves)"


def _between(key: str, value: float | None, low: float, high: float) -> Found:
    if value is not None and not low <= value <= high:
        yield key, f"must be between {low:g} and {high:g}"


def asterisk_feed(table: AsteriskFeedSettings) -> Found:
    yield from _between("port", table.port, 1, 65535)
    # Asterisk answers a refused Login after 1 s: a shorter deadline would hide bad credentials
    yield from _between("connect_timeout_s", table.connect_timeout, 1.5, 60)
    yield from _between("keepalive_s", table.keepalive, 1, 3600)
    if table.cdr_timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(table.cdr_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            yield "cdr_timezone", f"{table.cdr_timezone!r} is not a time zone name (like UTC, Asia/Shanghai)"
    for key in ("username", "secret"):
        if table.enabled and not getattr(table, key):
            yield key, "required when enabled (manager.conf's [user] and its secret)"


def freeswitch_feed(table: FreeswitchFeedSettings) -> Found:
    yield from _between("port", table.port, 1, 65535)
    yield from _between("connect_deadline_s", table.connect_deadline, 0.1, 60)
    yield from _between("silence_deadline_s", table.silence_deadline, 1, 3600)


def tenant(name: str, table: TenantSettings, problems: Problems) -> TenantPolicy | None:
    """The tenant's policy, or None after reporting what is wrong with it."""
    key: Key = ("tenants", name)
    before = len(problems.lines)
    if not TENANT_NAME.fullmatch(name):
        problems.add(key, "a tenant name is 1-64 letters, digits, '_', '.' or '-'")
    if problem := region_problem(table.region):
        problems.add((*key, "region"), problem)
    for code_key in ("reject_sip_code", "check_failed_sip_code"):
        if getattr(table, code_key) not in REJECT_SIP_CODES:
            problems.add((*key, code_key), f"{getattr(table, code_key)} is not one of {_CODES}")
    own = TenantPolicy(name=name).own_list
    for list_name in table.required_lists:
        if list_name not in (NATIONAL_LIST, own):
            problems.add((*key, "required_lists"),
                         f"{list_name!r}: a tenant needs '{NATIONAL_LIST}' or its own '{own}'")
    if len(set(table.required_lists)) != len(table.required_lists):
        problems.add((*key, "required_lists"), "lists repeat")
    block = analytics_block(name, table, (*key, "enforcement"), problems)
    hours = calling_hours(table.hours, (*key, "hours"), problems)
    if len(problems.lines) > before:
        return None
    policy = TenantPolicy(
        name=name,
        dial_plan=DialPlan(region=table.region.upper(), trunk_prefix=table.trunk_prefix or None,
                           international_prefixes=table.international_prefixes,
                           technical_prefixes=table.technical_prefixes,
                           extra_short_numbers=frozenset(table.short_numbers)),
        mode=table.mode, list_policy=table.policy, default_purpose=table.default_purpose,
        reject_sip_code=table.reject_sip_code, check_failed_sip_code=table.check_failed_sip_code,
        marketing_on_failure=table.marketing_on_failure, service_on_failure=table.service_on_failure,
        language=table.language, announcement=table.announcement,
        max_list_age=timedelta(days=table.max_list_age_days), stale_action=table.stale_action, hours=hours,
        analytics_block=block, required_lists=table.required_lists,
    )
    try:
        policy.announcement_for()
    except (KeyError, IndexError, ValueError):
        problems.add((*key, "announcement"), "may use only {language} and {tenant}")
        return None
    # the prefixes against the region's own numbers: '011' in GB or IN would read Leicester's 0116
    # numbers as foreign ones (numbers.dial_plan_problems)
    for problem in dial_plan_problems(policy.dial_plan):
        problems.add(key, problem)
    return None if len(problems.lines) > before else policy


def analytics_block(name: str, table: TenantSettings, key: Key, problems: Problems) -> AnalyticsBlock:
    """``[tenants.NAME.enforcement]`` as the core's ``AnalyticsBlock`` (problems reported)."""
    enforcement = table.enforcement
    if enforcement.analytics_sip_code not in REJECT_SIP_CODES:
        problems.add((*key, "analytics_sip_code"), f"{enforcement.analytics_sip_code} is not one of {_CODES}")
    for text_key in ("reason_phrase", "location", "redress"):
        value = getattr(enforcement, text_key)
        if len(value) > 200 or any(c in value for c in '"\\\r\n$|') or (text_key == "reason_phrase" and not value):
            problems.add((*key, text_key), "1-200 characters without quotes, backslashes, '$', '|' or line breaks")
    if enforcement.redress and not enforcement.redress.startswith(("https://", "http://", "tel:", "mailto:")):
        problems.add((*key, "redress"), "a https://, tel: or mailto: URI")
    return AnalyticsBlock(enforcement.analytics_sip_code, enforcement.reason_phrase,
                          enforcement.location or name, enforcement.redress)


def calling_hours(table: HoursSettings, key: Key, problems: Problems) -> CallingHours | None:
    """The tenant's calling window (None: ``enabled = false``, or after reporting a problem)."""
    windows = {}
    for name in ("weekday", "weekend", "holiday"):
        try:
            windows[name] = parse_window(getattr(table, name))
        except ValueError as exc:
            problems.add((*key, name), str(exc))
    weekend_days, holidays = frozenset[int](), set()
    overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
    try:
        weekend_days = parse_days(table.weekend_days)
    except ValueError as exc:
        problems.add((*key, "weekend_days"), str(exc))
    for value in table.holidays:
        try:
            holidays.add(date.fromisoformat(value))
        except ValueError:
            problems.add((*key, "holidays"), f"{value!r} is not a date like 2026-10-01")
    try:
        overrides = parse_overrides(dict(table.zone_overrides))
    except ValueError as exc:
        problems.add((*key, "zone_overrides"), str(exc))
    if not table.enabled or len(windows) < 3:
        return None
    return CallingHours(weekend_days=weekend_days, holidays=frozenset(holidays), zone_overrides=overrides,
                        **windows)


def upper_region(table: R) -> R:
    """The table with its region code in upper case (as phonenumbers spells them)."""
    return msgspec.structs.replace(table, region=table.region.upper()) if table.region else table



def enforcement(table: EnforcementSettings) -> Found:
    """Notice URLs are http(s); the complaint calendar's days and dates parse."""
    for name in ("webhook_url", "provisioning_url"):
        url = getattr(table.notice, name)
        if url and not url.startswith(("http://", "https://")):
            yield f"notice.{name}", f"{url!r} is not an http:// or https:// URL"
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for day in table.complaints.weekend_days:
        if day.lower() not in days:
            yield "complaints.weekend_days", f"{day!r} is not one of {', '.join(days)}"
    for holiday in table.complaints.holidays:
        try:
            date.fromisoformat(holiday)
        except ValueError:
            yield "complaints.holidays", f"{holiday!r} is not a date like 2026-10-01"


def replica(table: ReplicaSettings) -> Found:
    """The replica reads the changes more often than it may fall behind."""
    if table.poll_ms * 2 > table.max_lag_ms:
        yield "poll_ms", f"{table.poll_ms} ms: at most half of max_lag_ms ({table.max_lag_ms}), or the replica is " \
                         "always behind and every call takes the round trip"


def cluster(store: StoreSettings, replica: ReplicaSettings) -> Iterator[tuple[Key, str]]:
    """A Redis Cluster needs the Redis backend, and the replica does not follow one."""
    if not store.cluster:
        return
    if store.backend != "redis":
        yield ("store", "cluster"), "a cluster is a Redis Cluster: set [store] backend = \"redis\" too"
        return
    database = urlsplit(store.url).path.strip("/")
    if database not in ("", "0"):
        yield ("store", "url"), f"database {database!r}: a Redis Cluster has only database 0"
    if replica.enabled:
        yield ("replica", "enabled"), "the replica does not follow a Redis Cluster (its key scan and polls " \
            "talk to one node): turn [replica] off or point [store] at a single Redis"
