"""Configuration: one TOML file plus ``DNCGATE_`` environment overrides, validated at start-up.

An override names a key path with double underscores: ``DNCGATE_STORE__BACKEND=redis``,
``DNCGATE_TENANTS__ACME__MODE=monitor``. Every error names the key and where it came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dncgate.api.config import ApiConfig, api_settings
from dncgate.audit_spool import AuditSpoolConfig
from dncgate.consent.config import ConsentConfig
from dncgate.consent.settings import consent_settings, hours_settings
from dncgate.ivr.settings import IvrConfig, ivr_settings
from dncgate.lists.settings import FeedConfig, SyncConfig, feed_settings, sync_settings
from dncgate.model import REJECT_SIP_CODES, FailureAction, ListPolicy, Mode, Purpose, StaleAction, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.errors import UnknownList
from dncgate.store.protocol import list_key

if TYPE_CHECKING:  # imported by _ami / _esl_feed only when their table is there (classic AGI reads this file)
    from dncgate.ami.settings import AmiFeedSettings
    from dncgate.esl.inbound import InboundConfig

ENV_PREFIX = "DNCGATE_"
DEFAULT_TENANT = "default"


class ConfigError(Exception):
    """A configuration value that cannot be used; the message names the key and its source."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: str = "sqlite"
    path: Path = Path("dncgate.sqlite3")
    url: str = "redis://127.0.0.1:6379/0"
    timeout_ms: int = 250


@dataclass(frozen=True, slots=True)
class ListenConfig:
    enabled: bool
    host: str
    port: int
    max_sessions: int = 512


@dataclass(frozen=True, slots=True)
class EslHandlerConfig:
    """``[esl]`` keys of the outbound-socket check (``dncgate.esl.check.EslCheckSettings``).

    None leaves the handler's own default; ``overrides()`` gives only what the file sets.
    """

    strip_prefix: str | None = None
    transfer_to: str | None = None
    sounds_dir: str | None = None
    sound_ext: str | None = None
    announce: bool | None = None
    sip_reason: str | None = None
    fallback_sip_code: int | None = None  # a reject verdict that carries no code
    playback_deadline: float | None = None  # [esl] playback_deadline_s
    settle_deadline: float | None = None  # [esl] settle_deadline_s

    def overrides(self) -> dict[str, Any]:  # keyword arguments for EslCheckSettings
        values = {name: getattr(self, name) for name in self.__slots__}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class GateConfig:
    source: str
    store: StoreConfig
    tenants: Mapping[str, TenantPolicy]
    national_region: str = "US"
    agi: ListenConfig = field(default_factory=lambda: ListenConfig(True, "127.0.0.1", 4573))
    esl: ListenConfig = field(default_factory=lambda: ListenConfig(False, "127.0.0.1", 8084))
    esl_handler: EslHandlerConfig = field(default_factory=EslHandlerConfig)
    http: ListenConfig = field(default_factory=lambda: ListenConfig(True, "127.0.0.1", 9464))
    audit_queue_size: int = 100_000
    audit_spool: AuditSpoolConfig | None = None  # None: [audit] spool_dir = "" (no write-ahead spool)
    consent: ConsentConfig = field(default_factory=ConsentConfig)
    ivr: IvrConfig = field(default_factory=IvrConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    path: Path | None = None  # the TOML file it was read from (child processes read it again)
    ami: AmiFeedSettings | None = None  # [ami] enabled: the Asterisk call feed
    esl_feed: InboundConfig | None = None  # [esl_feed] enabled: the FreeSWITCH call feed

    def tenant(self, name: str | None) -> TenantPolicy | None:
        """The named tenant, or the default one when no name was given."""
        return self.tenants.get(name or DEFAULT_TENANT)


class _Reader:
    """Typed access to one table of the merged configuration, with key paths in errors."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data, self.path, self.source = data, path, source
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path}{key}: {message}")

    def get(self, key: str, kind: type, default: Any) -> Any:
        self.used.add(key)
        value = self.data.get(key, default)
        if kind is bool and isinstance(value, str):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise self.error(key, f"{value!r} is not true or false")
            return value.lower() in {"true", "1", "yes"}
        if kind is int and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise self.error(key, f"{value!r} is not a whole number") from None
        if kind is float and isinstance(value, int | str) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                raise self.error(key, f"{value!r} is not a number") from None
        if kind is tuple and isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if kind is tuple and isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise self.error(key, "expected a list of strings")
            return tuple(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"expected {kind.__name__}, got {value!r}")
        return value

    def between(self, key: str, kind: type, default: Any, low: float, high: float) -> Any:
        """A number from ``low`` to ``high`` (both included); ``default`` when the key is not set."""
        value = self.get(key, kind, default)
        if not low <= value <= high:
            raise self.error(key, f"must be between {low:g} and {high:g}")
        return value

    def optional(self, key: str, kind: type) -> Any:
        """The value when the key is set, else None (the reader's own default applies)."""
        self.used.add(key)
        return self.get(key, kind, None) if key in self.data else None

    def choice(self, key: str, enum: type[Any], default: Any) -> Any:
        value = self.get(key, str, default.value)
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise self.error(key, f"{value!r} is not one of {allowed}") from None

    def table(self, key: str) -> _Reader:
        self.used.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, "expected a table")
        return _Reader(value, f"{self.path}{key}.", self.source)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> GateConfig:
    """Read ``path`` (if given), apply environment overrides, validate. Raises ``ConfigError``."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    overridden = _apply_env(data, os.environ if environ is None else environ)
    if overridden:
        source += " + environment (" + ", ".join(overridden) + ")"
    return replace(_build(_Reader(data, "", source)), path=path)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    names = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        table = data
        for key in keys[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"environment {name}: {key} is not a table")
        table[keys[-1]] = value
        names.append(name)
    return names


def _build(root: _Reader) -> GateConfig:
    store_t = root.table("store")
    store = StoreConfig(
        backend=store_t.get("backend", str, "sqlite"),
        path=Path(store_t.get("path", str, "dncgate.sqlite3")),
        url=store_t.get("url", str, "redis://127.0.0.1:6379/0"),
        timeout_ms=store_t.between("timeout_ms", int, 250, 1, 10_000),
    )
    if store.backend not in {"sqlite", "redis"}:
        raise store_t.error("backend", f"{store.backend!r} is not one of sqlite, redis")
    store_t.check_unknown()
    national = root.table("national")
    national_region = _region(national, national.get("region", str, "US"))
    national.check_unknown()
    tables = {name: root.table(name) for name in ("agi", "esl", "http")}
    esl_handler = _esl_handler(tables["esl"])  # before _listen checks the table for unknown keys
    listeners = {
        name: _listen(tables[name], enabled, port)
        for name, enabled, port in (("agi", True, 4573), ("esl", False, 8084), ("http", True, 9464))
    }
    audit = root.table("audit")
    queue = audit.get("queue_size", int, 100_000)
    spool = _audit_spool(audit, store)
    audit.check_unknown()
    sync = sync_settings(root.table("sync"), national_region, _region)
    feed = feed_settings(root.table("feed"))
    if feed.enabled and sync.publish_dir is None:
        raise ConfigError(f"{root.source}: feed.enabled: needs sync.publish_dir (the directory the feed serves)")
    tenants_t = root.table("tenants")
    names = list(tenants_t.data) or [DEFAULT_TENANT]
    tenants = {name: _tenant(name, tenants_t.table(name)) for name in names}
    consent = consent_settings(root.table("consent"))
    ivr = ivr_settings(root.table("ivr"))
    api = api_settings(root.table("api"), tenants)
    ami, esl_feed = _ami(root.table("ami")), _esl_feed(root.table("esl_feed"))
    root.check_unknown()
    return GateConfig(
        source=root.source,
        store=store,
        tenants=tenants,
        national_region=national_region,
        audit_queue_size=queue,
        audit_spool=spool,
        consent=consent,
        ivr=ivr,
        api=api,
        sync=sync,
        feed=feed,
        agi=listeners["agi"],
        esl=listeners["esl"],
        esl_handler=esl_handler,
        http=listeners["http"],
        ami=ami,
        esl_feed=esl_feed,
    )


def _audit_spool(audit: _Reader, store: StoreConfig) -> AuditSpoolConfig | None:
    # By default next to the SQLite file (it moves with the store), else in the working directory.
    default = f"{store.path}.audit-spool" if store.backend == "sqlite" else "dncgate-audit-spool"
    directory = audit.get("spool_dir", str, default)
    max_bytes = audit.between("spool_max_bytes", int, 256 << 20, 1 << 20, 1 << 40)
    sync_ms = audit.between("spool_sync_ms", int, 100, 10, 5_000)
    if not directory.strip():
        return None
    return AuditSpoolConfig(Path(directory), max_bytes, sync_ms / 1000)


def _listen(table: _Reader, enabled: bool, port: int) -> ListenConfig:
    config = ListenConfig(
        enabled=table.get("enabled", bool, enabled),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, port),
        max_sessions=table.get("max_sessions", int, 512),
    )
    if not 0 <= config.port <= 65535:
        raise table.error("port", f"{config.port} is not a TCP port")
    if config.max_sessions < 1:
        raise table.error("max_sessions", "must be at least 1")
    table.check_unknown()
    return config


def _ami(t: _Reader) -> AmiFeedSettings | None:
    """``[ami]``: the Asterisk Manager call feed, None unless enabled; the defaults are the settings types'."""
    if not t.data:
        return None
    from dncgate.ami.settings import AmiFeedSettings, AmiSettings, TrackerSettings  # light: no panoramisk

    manager, calls = AmiSettings(username="", secret=""), TrackerSettings()
    enabled = t.get("enabled", bool, False)
    manager = replace(
        manager, host=t.get("host", str, manager.host), port=t.between("port", int, manager.port, 1, 65535),
        username=t.get("username", str, manager.username), secret=t.get("secret", str, manager.secret),
        # Asterisk answers a refused Login after 1 s: a shorter deadline would hide bad credentials
        connect_timeout=t.between("connect_timeout_s", float, manager.connect_timeout, 1.5, 60),
        keepalive_interval=t.between("keepalive_s", float, manager.keepalive_interval, 1, 3600),
    )
    zone = t.optional("cdr_timezone", str)
    if zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            calls = replace(calls, cdr_timezone=ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise t.error("cdr_timezone", f"{zone!r} is not a time zone name (like UTC, Asia/Shanghai)") from None
    t.check_unknown()
    for key in ("username", "secret"):
        if enabled and not getattr(manager, key):
            raise t.error(key, "required when enabled (manager.conf's [user] and its secret)")
    return AmiFeedSettings(manager, calls) if enabled else None


def _esl_feed(t: _Reader) -> InboundConfig | None:
    """``[esl_feed]``: the FreeSWITCH inbound event-socket call feed, None unless enabled."""
    if not t.data:
        return None
    from dncgate.esl.inbound import InboundConfig

    base = InboundConfig()
    enabled = t.get("enabled", bool, False)
    config = replace(
        base, host=t.get("host", str, base.host), port=t.between("port", int, base.port, 1, 65535),
        password=t.get("password", str, base.password),
        connect_deadline=t.between("connect_deadline_s", float, base.connect_deadline, 0.1, 60),
    )
    silence = t.optional("silence_deadline_s", float)  # None: the feed's own (3 missed heartbeats)
    if silence is not None:
        config = replace(config, event_deadline=t.between("silence_deadline_s", float, silence, 1, 3600))
    t.check_unknown()
    return config if enabled else None


def _esl_handler(t: _Reader) -> EslHandlerConfig:
    """The handler keys of ``[esl]`` (``_listen`` reads the rest of the table and checks for typos)."""
    config = EslHandlerConfig(
        strip_prefix=t.optional("strip_prefix", str), transfer_to=t.optional("transfer_to", str),
        sounds_dir=t.optional("sounds_dir", str), sound_ext=t.optional("sound_ext", str),
        announce=t.optional("announce", bool), sip_reason=t.optional("sip_reason", str),
        fallback_sip_code=t.optional("fallback_sip_code", int),
        playback_deadline=t.optional("playback_deadline_s", float),
        settle_deadline=t.optional("settle_deadline_s", float),
    )
    if config.fallback_sip_code is not None and config.fallback_sip_code not in {603, 607, 608}:
        raise t.error("fallback_sip_code", f"{config.fallback_sip_code}: one of 603, 607, 608")
    for key, value, most in (("playback_deadline_s", config.playback_deadline, 300.0),
                             ("settle_deadline_s", config.settle_deadline, 30.0)):
        if value is not None and not 0 < value <= most:
            raise t.error(key, f"{value}: must be above 0 and at most {most:g} seconds")
    if config.strip_prefix is not None and not re.fullmatch(r"[0-9*#+]*", config.strip_prefix):
        raise t.error("strip_prefix", f"{config.strip_prefix!r}: only digits, *, # and +")
    if config.transfer_to is not None:
        try:
            config.transfer_to.format(number="1", destination="1", context="c")
        except (KeyError, IndexError, ValueError) as exc:
            raise t.error("transfer_to", f"placeholders are {{number}}, {{destination}}, {{context}}: {exc}") from None
    if config.sound_ext is not None and not re.fullmatch(r"[A-Za-z0-9]{1,8}", config.sound_ext):
        raise t.error("sound_ext", f"{config.sound_ext!r} is not a file extension")
    return config


def _region(table: _Reader, region: str) -> str:
    import phonenumbers

    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise table.error("region", f"{region!r} is not a region code phonenumbers knows (like CN, US, GB)")
    return region.upper()


def _tenant(name: str, t: _Reader) -> TenantPolicy:
    try:
        list_key(name)
    except UnknownList:
        raise t.error("", "a tenant name is 1-64 letters, digits, '_', '.' or '-'") from None
    plan = DialPlan(
        region=_region(t, t.get("region", str, "US")),
        trunk_prefix=t.get("trunk_prefix", str, "") or None,
        international_prefixes=t.get("international_prefixes", tuple, list(DialPlan().international_prefixes)),
        technical_prefixes=t.get("technical_prefixes", tuple, []),
        extra_short_numbers=frozenset(t.get("short_numbers", tuple, [])),
    )
    policy = TenantPolicy(
        name=name,
        dial_plan=plan,
        mode=t.choice("mode", Mode, Mode.ENFORCE),
        list_policy=t.choice("policy", ListPolicy, ListPolicy.OPT_OUT),
        default_purpose=t.choice("default_purpose", Purpose, Purpose.MARKETING),
        reject_sip_code=t.get("reject_sip_code", int, 607),
        check_failed_sip_code=t.get("check_failed_sip_code", int, 603),
        marketing_on_failure=t.choice("marketing_on_failure", FailureAction, FailureAction.REJECT),
        service_on_failure=t.choice("service_on_failure", FailureAction, FailureAction.ALLOW),
        language=t.get("language", str, "en"),
        announcement=t.get("announcement", str, "dncgate/{language}/declined"),
        # a very large maximum age turns the staleness alarm off in practice
        max_list_age=timedelta(days=t.between("max_list_age_days", int, 31, 1, 999_999)),
        stale_action=t.choice("stale_action", StaleAction, StaleAction.ALARM),
    )
    policy = replace(policy, hours=hours_settings(t.table("hours")))
    for key in ("reject_sip_code", "check_failed_sip_code"):
        if getattr(policy, key) not in REJECT_SIP_CODES:
            raise t.error(key, f"{getattr(policy, key)} is not one of 603, 607, 608")
    try:
        policy.announcement_for()
    except (KeyError, IndexError, ValueError):
        raise t.error("announcement", "may use only {language} and {tenant}") from None
    t.check_unknown()
    return policy
