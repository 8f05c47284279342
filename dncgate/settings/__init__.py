"""The configuration's one schema and its one reader.

``load()`` reads ``dncgate.toml`` and the ``DNCGATE_`` environment into a ``Settings``: one typed,
frozen table per TOML table (msgspec Structs: strict types, unknown keys refused, key paths in
errors). The composition root (``dncgate.app``) hands each room its own table; no room reads the
file. ``find_config`` (``dncgate.config_file``) says which file every program reads.

Importing this package imports the core (``model``, ``numbers``, ``hours``) and msgspec, and no
door or room: classic AGI pays for it on every call it decides in-process.
"""

from dncgate.config_file import SYSTEM_CONFIG, find_config
from dncgate.errors import ConfigError
from dncgate.settings.load import DEFAULT_TENANT, ENV_PREFIX, Settings, load
from dncgate.settings.schema import (
    DEFAULT_TAXONOMY,
    MIN_RETENTION_MONTHS,
    AgiSettings,
    ApiKeySettings,
    ApiSettings,
    AsteriskFeedSettings,
    AuditSettings,
    ConsentSettings,
    ConsoleSettings,
    EslSettings,
    FeedSettings,
    FreeswitchFeedSettings,
    HoursSettings,
    HttpServerSettings,
    IvrSettings,
    Listener,
    NationalSettings,
    ReplicaSettings,
    ServeSettings,
    StoreSettings,
    SyncSettings,
    TenantSettings,
)

__all__ = [
    "DEFAULT_TAXONOMY", "DEFAULT_TENANT", "ENV_PREFIX", "MIN_RETENTION_MONTHS", "SYSTEM_CONFIG", "AgiSettings",
    "ApiKeySettings", "ApiSettings", "AsteriskFeedSettings", "AuditSettings", "ConfigError", "ConsentSettings",
    "ConsoleSettings", "EslSettings", "FeedSettings", "FreeswitchFeedSettings", "HoursSettings", "HttpServerSettings",
    "IvrSettings",
    "Listener", "NationalSettings", "ReplicaSettings", "ServeSettings", "Settings", "StoreSettings", "SyncSettings",
    "TenantSettings",
    "find_config", "load",
]
