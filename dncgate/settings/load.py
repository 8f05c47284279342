"""Read ``dncgate.toml`` and the ``DNCGATE_`` environment into one ``Settings``, reporting every problem.

An override names a key path with double underscores: ``DNCGATE_STORE__BACKEND=redis``,
``DNCGATE_TENANTS__ACME__MODE=monitor``. Every problem names its source (the file, or the
variable), the key path and what is wrong; ``load`` raises one ``ConfigError`` listing them all.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dncgate.errors import ConfigError
from dncgate.model import TenantPolicy
from dncgate.settings import checks, early_warning
from dncgate.settings.decode import decode
from dncgate.settings.early_warning import EarlyWarningSettings
from dncgate.settings.enforcement import EnforcementSettings
from dncgate.settings.messages import MessagesSettings, messages_problems
from dncgate.settings.problems import Key, Problems
from dncgate.settings.schema import (
    AgiSettings,
    ApiSettings,
    AsteriskFeedSettings,
    AuditSettings,
    ConsentSettings,
    ConsoleSettings,
    EslSettings,
    FeedSettings,
    FreeswitchFeedSettings,
    HttpServerSettings,
    IvrSettings,
    NationalSettings,
    ReplicaSettings,
    ServeSettings,
    StoreSettings,
    SyncSettings,
    Table,
    TenantSettings,
)

if TYPE_CHECKING:
    from dncgate.audit_spool import AuditSpoolConfig

ENV_PREFIX = "DNCGATE_"
DEFAULT_TENANT = "default"
T = TypeVar("T", bound=Table)


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration: one typed table per TOML table; each room is handed its own."""

    tenants: Mapping[str, TenantPolicy]
    source: str = "defaults"  # what was read: the file, and the environment variables that overrode it
    path: Path | None = None  # the TOML file it was read from (child processes read it again)
    store: StoreSettings = field(default_factory=StoreSettings)
    national: NationalSettings = field(default_factory=NationalSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    esl: EslSettings = field(default_factory=EslSettings)
    http: HttpServerSettings = field(default_factory=HttpServerSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    consent: ConsentSettings = field(default_factory=ConsentSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    ami: AsteriskFeedSettings = field(default_factory=AsteriskFeedSettings)
    esl_feed: FreeswitchFeedSettings = field(default_factory=FreeswitchFeedSettings)
    enforcement: EnforcementSettings = field(default_factory=EnforcementSettings)
    messages: MessagesSettings = field(default_factory=MessagesSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    replica: ReplicaSettings = field(default_factory=ReplicaSettings)
    early_warning: EarlyWarningSettings = field(default_factory=EarlyWarningSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def audit_spool(self) -> AuditSpoolConfig | None:
        """``[audit]``'s write-ahead spool (None: ``spool_dir = ""``, no spool)."""
        from dncgate.audit_spool import AuditSpoolConfig

        audit = self.audit
        directory = audit.spool_dir
        if directory is None:
            directory = f"{self.store.path}.audit-spool" if self.store.backend == "sqlite" else "dncgate-audit-spool"
        if not directory.strip():
            return None
        return AuditSpoolConfig(Path(directory), audit.spool_max_bytes, audit.spool_sync_ms / 1000)

    @property
    def national_region(self) -> str:
        return self.national.region

    def tenant(self, name: str | None) -> TenantPolicy | None:
        """The named tenant, or the default one when no name was given."""
        return self.tenants.get(name or DEFAULT_TENANT)

    def configured_tenant(self, name: str, what: str | None = None) -> TenantPolicy:
        """The tenant ``name``; ``ValueError`` (``what``: what named it, default ``--tenant NAME``) when
        none is configured."""
        tenant = self.tenants.get(name)
        if tenant is None:
            configured = ", ".join(sorted(self.tenants))
            raise ValueError(f"{what or f'--tenant {name}'}: no tenant {name!r} is configured (tenants: {configured})")
        return tenant

    def configured_list(self, list_name: str) -> str:
        """``list_name`` when it is ``national`` or the list of a configured tenant, else ``ValueError``."""
        kind, _, tenant = list_name.partition(":")
        if kind == "tenant" and tenant:
            self.configured_tenant(tenant, f"--list {list_name}")
        return list_name

    def configured_category(self, category: str | None) -> str | None:
        """``category`` when it is one of ``[consent] categories`` (or None), else ``ValueError``."""
        if category is not None and category not in self.consent.categories:
            raise ValueError(f"--category {category}: not a configured category "
                             f"([consent] categories: {', '.join(self.consent.categories)})")
        return category


TABLES: dict[str, type[Table]] = {
    "store": StoreSettings, "national": NationalSettings, "agi": AgiSettings, "esl": EslSettings,
    "http": HttpServerSettings, "audit": AuditSettings, "consent": ConsentSettings, "ivr": IvrSettings,
    "api": ApiSettings, "sync": SyncSettings, "feed": FeedSettings, "ami": AsteriskFeedSettings,
    "esl_feed": FreeswitchFeedSettings, "enforcement": EnforcementSettings, "messages": MessagesSettings,
    "console": ConsoleSettings,
    "replica": ReplicaSettings,
    "early_warning": EarlyWarningSettings,
    "serve": ServeSettings,
}
NAMES = {cls: name for name, cls in TABLES.items()}


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (if given), apply environment overrides, validate. Raises ``ConfigError``."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    problems = Problems(source, {})
    problems.from_env = _apply_env(data, os.environ if environ is None else environ, problems)
    settings = _build(data, problems)
    if settings is None or problems.lines:
        raise ConfigError(problems.lines)
    if problems.from_env:
        source += " + environment (" + ", ".join(sorted(set(problems.from_env.values()))) + ")"
    return replace(settings, source=source, path=path)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], problems: Problems) -> dict[Key, str]:
    """Write each ``DNCGATE_A__B=value`` into ``data`` as a.b = "value"; returns key path -> variable."""
    applied: dict[Key, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = tuple(k.lower() for k in name[len(ENV_PREFIX) :].split("__"))
        table = data
        for depth, key in enumerate(keys[:-1]):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                problems.add(keys[: depth + 1], f"environment {name}: {key} is not a table")
                break
        else:
            table[keys[-1]] = value
            applied[keys] = name
    return applied


def _build(data: dict[str, Any], problems: Problems) -> Settings | None:
    for name in data:
        if name not in TABLES and name != "tenants":
            problems.add((name,), "unknown key")
    tenants = _tenants(data.get("tenants", {}), problems)
    national = _read(NationalSettings, data, problems, checks.national)
    sync = _read(SyncSettings, data, problems, lambda table: checks.sync(table, tenants or {}))
    publish_dir = sync.publish_dir if sync is not None else None
    consent = _read(ConsentSettings, data, problems, checks.consent)
    taxonomy = consent.categories if consent is not None else ()
    tables: dict[str, Table | None] = {
        "store": _read(StoreSettings, data, problems),
        "national": checks.upper_region(national) if national is not None else None,
        "agi": _read(AgiSettings, data, problems, checks.listener),
        "esl": _read(EslSettings, data, problems, checks.esl),
        "http": _read(HttpServerSettings, data, problems),
        "audit": _read(AuditSettings, data, problems),
        "consent": consent,
        "ivr": _read(IvrSettings, data, problems, checks.ivr),
        "api": _read(ApiSettings, data, problems, lambda table: checks.api(table, tenants or {})),
        "sync": checks.upper_region(sync) if sync is not None else None,
        "feed": _read(FeedSettings, data, problems, lambda table: checks.feed(table, publish_dir)),
        "ami": _read(AsteriskFeedSettings, data, problems, checks.asterisk_feed),
        "esl_feed": _read(FreeswitchFeedSettings, data, problems, checks.freeswitch_feed),
        "enforcement": _read(EnforcementSettings, data, problems, checks.enforcement),
        "messages": _read(MessagesSettings, data, problems,
                          lambda table: messages_problems(table, tenants or {}, taxonomy)),
        "console": _read(ConsoleSettings, data, problems),
        "replica": _read(ReplicaSettings, data, problems, checks.replica),
        "early_warning": _read(EarlyWarningSettings, data, problems,
                               lambda table: early_warning.check(table, tenants or {})),
        "serve": _read(ServeSettings, data, problems),
    }
    store, replica = tables["store"], tables["replica"]
    if isinstance(store, StoreSettings) and isinstance(replica, ReplicaSettings) and replica.enabled \
            and store.backend != "redis":
        problems.add(("replica", "enabled"), "the replica follows a Redis store: set [store] backend = \"redis\"")
    if isinstance(store, StoreSettings) and isinstance(replica, ReplicaSettings):
        for key, problem in checks.cluster(store, replica):
            problems.add(key, problem)
    warning = tables["early_warning"]
    if isinstance(store, StoreSettings) and isinstance(warning, EarlyWarningSettings) and \
            warning.transport == "redis" and store.backend != "redis":
        problems.add(("early_warning", "transport"), "the streams are on the store's Redis: set [store] backend = "
                                                     "\"redis\"")
    if isinstance(store, StoreSettings) and isinstance(warning, EarlyWarningSettings) and \
            warning.transport == "redis" and store.cluster:
        problems.add(("early_warning", "transport"), "the fact streams need one Redis server, not [store] cluster "
                                                     "(not written for a cluster yet)")
    if tenants is None or any(table is None for table in tables.values()):
        return None
    return Settings(tenants=tenants, **tables)  # type: ignore[arg-type]  # none is None (checked above)


def _read(cls: type[T], data: dict[str, Any], problems: Problems,
          check: Callable[[T], checks.Found] | None = None) -> T | None:
    """The table ``cls`` stands for, decoded and checked (None after reporting its problems)."""
    name = NAMES[cls]
    table = decode(cls, data.get(name, {}), (name,), problems)
    if table is not None and check is not None:
        checks.report(problems, (name,), check(table))
    return table


def _tenants(value: object, problems: Problems) -> dict[str, TenantPolicy] | None:
    if not isinstance(value, dict):
        problems.add(("tenants",), "expected a table")
        return None
    tables = {name: decode(TenantSettings, table, ("tenants", name), problems) for name, table in value.items()}
    if not tables:
        tables = {DEFAULT_TENANT: TenantSettings()}
    policies = {name: checks.tenant(name, t, problems) if t is not None else None for name, t in tables.items()}
    if any(policy is None for policy in policies.values()):
        return None
    return {name: policy for name, policy in policies.items() if policy is not None}
