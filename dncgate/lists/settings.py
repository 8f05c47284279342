"""Reading ``[sync]`` and ``[feed]`` from the configuration (called by ``dncgate.config``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dncgate.store.errors import UnknownList
from dncgate.store.protocol import parse_list_name as list_key_or_national

if TYPE_CHECKING:
    from dncgate.config import _Reader


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """``[sync]``: where a list is synced from (``dncgate lists sync``, and periodically in ``serve``)."""

    enabled: bool = False  # periodic sync inside ``dncgate serve``
    source: str = "http"  # http (national platform or a carrier's feed) or dir (a drop directory)
    url: str = ""
    directory: Path = Path("dncgate-drop")
    auth_header: str = ""
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_file: Path | None = None
    public_key: str = ""  # base64 Ed25519: manifests must then be signed
    list_name: str = "national"
    region: str = ""  # for numbers not in +E.164 form; default: [national] region
    interval_s: int = 3600
    max_shrink: float = 0.05
    workdir: Path = Path("dncgate-sync")
    outbox: Path | None = None  # registrations queue (SQLite file); pushed upstream when set
    # Run each periodic sync in a child process, so parsing and sorting a large snapshot never
    # holds the event loop (and the calls waiting on it) of the serving process.
    isolate: bool = True
    publish_dir: Path | None = None  # republish what was applied, for resellers (see [feed])


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """``[feed]``: serve ``sync.publish_dir`` to resellers holding a token ("name:token" entries)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9465
    tokens: tuple[str, ...] = ()


def _optional_path(table: _Reader, key: str) -> Path | None:
    value = table.get(key, str, "")
    return Path(value) if value else None


def sync_settings(t: _Reader, national_region: str, region: Callable[[_Reader, str], str]) -> SyncConfig:
    """``[sync]``; ``region`` validates a region code (``dncgate.config``'s check)."""
    config = SyncConfig(
        enabled=t.get("enabled", bool, False),
        source=t.get("source", str, "http"),
        url=t.get("url", str, ""),
        directory=Path(t.get("directory", str, "dncgate-drop")),
        auth_header=t.get("auth_header", str, ""),
        client_cert=_optional_path(t, "client_cert"),
        client_key=_optional_path(t, "client_key"),
        ca_file=_optional_path(t, "ca_file"),
        public_key=t.get("public_key", str, ""),
        list_name=t.get("list", str, "national"),
        region=region(t, t.get("region", str, national_region)),
        interval_s=t.get("interval_s", int, 3600),
        max_shrink=float(t.get("max_shrink_percent", int, 5)) / 100,
        workdir=Path(t.get("workdir", str, "dncgate-sync")),
        outbox=_optional_path(t, "outbox"),
        publish_dir=_optional_path(t, "publish_dir"),
        isolate=t.get("isolate", bool, True),
    )
    if config.source not in {"http", "dir"}:
        raise t.error("source", f"{config.source!r} is not one of http, dir")
    if config.source == "http" and config.enabled and not config.url.startswith(("http://", "https://")):
        raise t.error("url", "an http source needs an http:// or https:// URL")
    if config.auth_header and ":" not in config.auth_header:
        raise t.error("auth_header", "expected 'Name: value', like 'Authorization: Bearer ...'")
    if not 0 <= config.max_shrink <= 1:
        raise t.error("max_shrink_percent", "must be between 0 and 100")
    if config.interval_s < 10:
        raise t.error("interval_s", "must be at least 10")
    if config.public_key:
        from dncgate.lists.manifest import ManifestError, load_public_key  # only when a key is set

        try:
            load_public_key(config.public_key)
        except ManifestError as exc:
            raise t.error("public_key", str(exc)) from None
    try:
        list_key_or_national(config.list_name)
    except UnknownList as exc:
        raise t.error("list", str(exc)) from None
    t.check_unknown()
    return config


def feed_settings(t: _Reader) -> FeedConfig:
    config = FeedConfig(
        enabled=t.get("enabled", bool, False),
        host=t.get("host", str, "127.0.0.1"),
        port=t.get("port", int, 9465),
        tokens=t.get("tokens", tuple, []),
    )
    if not 0 <= config.port <= 65535:
        raise t.error("port", f"{config.port} is not a TCP port")
    if any(":" not in token or not token.partition(":")[2] for token in config.tokens):
        raise t.error("tokens", "each entry is 'reseller:token'")
    if config.enabled and not config.tokens:
        raise t.error("tokens", "the feed needs at least one reseller token")
    t.check_unknown()
    return config
