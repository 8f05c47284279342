"""Every table and key of ``dncgate.toml``: its type, its bounds and its default, each written once.

A ``Table`` refuses keys it does not know. A field's Python name may differ from its TOML key
(``msgspec.field(name=...)``: ``playback_deadline`` is read from ``playback_deadline_s``). Bounds are
``msgspec.Meta`` on the type; the checks that need more than a type (region codes, placeholders,
patterns, one key against another) are in ``dncgate.settings.checks``. The tenants' defaults are the
core's own (``TenantPolicy``, ``DialPlan``, ``CallingHours``): the schema reads them from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, field

from dncgate.config_file import (
    AGI_HOST,
    AGI_PORT,
    ESL_PORT,
    HTTP_PORT,
    LOOPBACK_HOST,
    LOOPBACK_PEERS,
    MAX_SESSIONS,
    MAX_SESSIONS_PER_PEER,
)
from dncgate.hours import CallingHours, Window
from dncgate.model import FailureAction, ListPolicy, Mode, Purpose, StaleAction, TenantPolicy
from dncgate.settings.enforcement import TenantEnforcementSettings
from dncgate.settings.table import Table as Table  # re-exported: the tables' base

Port = Annotated[int, Meta(ge=0, le=65535, description="a TCP port")]
Texts = tuple[str, ...]
# An HTTP listener's bounds ([http], [feed]): connections open at once, and its two timeouts.
Connections = Annotated[int, Meta(ge=1, le=65_536)]
HeaderTimeout = Annotated[float, Meta(ge=0.5, le=300.0)]
KeepaliveTimeout = Annotated[float, Meta(ge=0.5, le=3600.0)]
HEADER_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 15.0

# The default marketing taxonomy (code -> what it covers).
DEFAULT_TAXONOMY: dict[str, str] = {
    "finance": "finance and insurance",
    "real_estate": "real estate",
    "education": "education",
    "health": "health",
    "consumer": "consumer goods and cars",
    "telecom": "telecom, media and IT",
    "travel": "travel and leisure",
    "food": "food",
}
MIN_RETENTION_MONTHS = 5

_POLICY = TenantPolicy(name="default")  # the core's defaults for a tenant
_HOURS = CallingHours()  # the calling window a tenant has unless its [hours] say otherwise


def _window(window: Window | None) -> str:
    return "closed" if window is None else str(window)


class StoreSettings(Table, frozen=True):
    """``[store]``: where the lists, the audit and the consent ledger are kept."""

    backend: Literal["sqlite", "redis"] = "sqlite"  # sqlite: one host; redis: several switches share one list
    path: Path = Path("dncgate.sqlite3")  # the SQLite file (backend sqlite); relative to the working directory
    url: str = "redis://127.0.0.1:6379/0"  # the Redis server (backend redis); with cluster, any one node of it
    # backend redis: url names a node of a Redis Cluster; the store finds the others and routes every
    # command to the master of its key's slot (no [replica]; README "Redis Cluster")
    cluster: bool = False
    # deadline of every store call on a call's path (ms); past it the check has failed
    timeout_ms: Annotated[int, Meta(ge=1, le=10_000)] = 250

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000


class NationalSettings(Table, frozen=True):
    """``[national]``: the national do-not-call list."""

    region: str = "US"  # for numbers not in +E.164 form on the national list


class Listener(Table, frozen=True):
    """A door's listening socket."""

    enabled: bool = True  # whether serve opens this listener
    host: str = LOOPBACK_HOST  # the address it listens on (beyond loopback, widen allow too)
    port: Port = 0  # the TCP port it listens on
    max_sessions: Annotated[int, Meta(ge=1)] = MAX_SESSIONS  # sessions at once ([http]: requests in flight)
    max_sessions_per_peer: Annotated[int, Meta(ge=1)] = MAX_SESSIONS_PER_PEER  # one peer's share; ignored by [http]
    allow: Texts = LOOPBACK_PEERS  # peer networks (CIDR) a call door accepts; ignored by [http]


class AgiSettings(Listener, frozen=True):
    """``[agi]``: the FastAGI door Asterisk's dialplan calls (``AGI(agi://127.0.0.1:4573/check...)``)."""

    host: str = AGI_HOST
    port: Port = AGI_PORT


class HttpServerSettings(Listener, frozen=True):
    """``[http]``: health, metrics and (``[api]``) the HTTP API; ``max_sessions`` bounds requests in flight."""

    port: Port = HTTP_PORT
    # Connections open at once; beyond, accepting pauses (the rest wait in the kernel's backlog).
    max_connections: Connections = 256
    # A new connection's first request head must be complete within this; seconds.
    header_timeout: HeaderTimeout = field(default=HEADER_TIMEOUT_S, name="header_timeout_s")
    # An idle connection is closed this long after its last response (aiohttp's default is 3,630 s).
    keepalive_timeout: KeepaliveTimeout = field(default=KEEPALIVE_TIMEOUT_S, name="keepalive_timeout_s")


class EslSettings(Listener, frozen=True):
    """``[esl]``: FreeSWITCH's outbound event socket, and what its check handler does with a verdict."""

    enabled: bool = False
    port: Port = ESL_PORT
    # Leading digits the dialplan adds to route into the gate (``8`` for ``8<number>``);
    # stripped from Caller-Destination-Number (not from dncgate_number).
    strip_prefix: str = ""
    # The continuation an allowed call is transferred to: ``<extension> XML <context>``.
    # Placeholders: {number} the number checked, {destination} the destination without the
    # prefix, {context} the channel's dialplan context.  Keep the continuation in a context
    # no SIP profile routes into, or a caller could dial it directly and skip the gate.
    transfer_to: str = "{number} XML dncgate_allowed"
    # Where the prompts tree is installed; the announcement name is appended.
    sounds_dir: str = "/usr/share/freeswitch/sounds"
    sound_ext: str = "wav"  # the announcement file's extension
    announce: bool = True  # play the tenant's announcement before a reject
    # Reason header on the final response (channel variable sip_reason).  Without it 607 goes
    # out with ``Reason: SIP;cause=819;text="UNWANTED"`` (819 is FreeSWITCH's own cause
    # number).  Empty: leave FreeSWITCH's default.
    sip_reason: str = 'Q.850;cause=21;text="CALL_REJECTED"'
    fallback_sip_code: int = 603  # a reject verdict that carries no code
    # The announcement (pre_answer and playback) must finish within this; else the call is ended
    # through the API (uuid_kill), since a playback that blocks also blocks a queued hangup.
    playback_deadline: float = field(default=30.0, name="playback_deadline_s")
    # For the transfer's CHANNEL_EXECUTE_COMPLETE, and for a reject's hangup to be seen (else
    # uuid_kill).  dialplan/freeswitch/dncgate.xml's park_timeout must exceed reject_deadline().
    settle_deadline: float = field(default=2.0, name="settle_deadline_s")


class AuditSettings(Table, frozen=True):
    """``[audit]``: the durable record of every decision, and its write-ahead spool."""

    queue_size: int = 100_000  # records waiting for the durable audit; more are counted and dropped
    # The write-ahead spool (``dncgate.audit_spool``): None (not set) is next to the SQLite file
    # (it moves with the store), else ``dncgate-audit-spool``; "" turns the spool off.
    spool_dir: str | None = None
    spool_max_bytes: Annotated[int, Meta(ge=1 << 20, le=1 << 40)] = 256 << 20  # the spool's bound on disk
    spool_sync_ms: Annotated[int, Meta(ge=10, le=5_000)] = 100  # the group commit's fsync interval


class ServeSettings(Table, frozen=True):
    """``[serve]``: how many processes ``dncgate serve`` runs (``dncgate.supervisor``). With
    ``workers`` >= 2 a supervisor binds the doors' sockets once and runs that many worker processes
    accepting on them (one accept queue per door); SIGUSR2 restarts them one at a time without
    dropping a call. ``serve --workers N`` overrides it."""

    workers: Annotated[int, Meta(ge=1, le=256)] = 1  # 1: one process, as without a supervisor
    # A worker started by a rolling restart (or respawned) must accept on every door within this
    # long, else it is killed and the old one kept.
    ready_timeout: Annotated[float, Meta(ge=1.0, le=3600.0)] = field(default=120.0, name="ready_timeout_s")
    # serve's event loop: uvloop (libuv's; the same program, ~10-25% less CPU a check) or Python's own
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"


class ReplicaSettings(Table, frozen=True):
    """``[replica]``: the lists and the index of numbers with consent state, in the gate's process
    (``dncgate.replica``; Redis store only). Off by default: with it on, every writer of consent state
    or standing (the API, the IVR, ``dncgate consent``, enforcement) waits ``max_lag_ms`` before it
    acknowledges, and every program must read the same ``max_lag_ms``."""

    enabled: bool = False  # serve decides calls to numbers without records from the replica
    dir: Path = Path("dncgate-replica")  # compact list files, shared by the gates of one host
    # Decide from the replica only if it read the store's changes at most this long ago; else the
    # round trip. Writers of consent state wait this long before acknowledging.
    max_lag_ms: Annotated[int, Meta(ge=10, le=10_000)] = 200
    poll_ms: Annotated[int, Meta(ge=1, le=5_000)] = 50  # how often the replica reads the changes
    # With the store down: decide from the replica for at most this long after its last good read
    # (numbers with consent state excepted: they fail closed), then fail closed. 0: never.
    max_age_s: Annotated[int, Meta(ge=0, le=3_600)] = field(default=60, name="replica_max_age_s")

    @property
    def max_lag(self) -> float:
        return self.max_lag_ms / 1000

    @property
    def poll(self) -> float:
        return self.poll_ms / 1000


class ConsentSettings(Table, frozen=True):
    """``[consent]``: the category taxonomy and the retention period of the consent ledger."""

    categories: Texts = tuple(DEFAULT_TAXONOMY)  # the marketing categories a consent may name
    retention_months: int = MIN_RETENTION_MONTHS  # how long ledger records are kept (at least 5)


class IvrSettings(Table, frozen=True):
    """``[ivr]``: the self-service menu's bounds."""

    # after a prompt, for the first digit (and between digits); seconds, whole or decimal
    digit_timeout: Annotated[float, Meta(ge=1.0, le=60.0)] = field(default=6.0, name="digit_timeout_s")
    max_failures: Annotated[int, Meta(ge=1, le=10)] = 3  # timeouts or invalid choices in a row
    max_asks: int = 30  # digit collections in one call, whatever happens (max_failures..200)
    # one IVR call at the most, seconds; then it is ended
    call_deadline: Annotated[float, Meta(ge=30.0, le=3600.0)] = field(default=600.0, name="call_deadline_s")
    ledger_deadline_ms: Annotated[int, Meta(ge=50, le=30_000)] = 2000  # every consent-ledger read and write

    @property
    def ledger_deadline(self) -> float:
        return self.ledger_deadline_ms / 1000


class ApiKeySettings(Table, frozen=True):
    """``[api.keys.ID]``: one API key, scoped to one tenant (``dncgate api-key new`` prints the table)."""

    tenant: str = ""  # the tenant this key acts for (a [tenants.NAME])
    sha256: str = ""  # of the key, lowercase hex (``dncgate api-key new`` prints it)


class ApiSettings(Table, frozen=True):
    """``[api]``: the HTTP API on the ``[http]`` listener; ``[api.keys.ID]``: its tenant-scoped keys."""

    enabled: bool = False  # serve /v1 on the [http] listener
    keys: dict[str, ApiKeySettings] = field(default_factory=dict)


class ConsoleSettings(Table, frozen=True):
    """``[console]``: the operators' web console on the ``[http]`` listener (``dncgate operator add``)."""

    enabled: bool = False  # serve /console/ (signed-in operators only); serve --demo turns it on
    session_idle_minutes: Annotated[int, Meta(ge=1, le=7 * 1440)] = 480  # a session unused this long ends
    max_sessions: Annotated[int, Meta(ge=1, le=100_000)] = 1000  # signed in at once; the oldest ends first
    secure_cookies: bool = False  # always mark cookies Secure (also done for any request that came over TLS)
    language: Literal["en", "zh"] = "en"  # when the browser asks for neither


class SyncSettings(Table, frozen=True):
    """``[sync]``: where a list is synced from (``dncgate lists sync``, and periodically in ``serve``)."""

    enabled: bool = False  # periodic sync inside ``dncgate serve``
    source: Literal["http", "dir"] = "http"  # the national platform / a carrier's feed, or a drop directory
    url: str = ""  # source http: the manifest's URL
    directory: Path = Path("dncgate-drop")  # source dir: where snapshots and their manifest are dropped
    auth_header: str = ""  # sent with every request ("Authorization: Bearer ...")
    client_cert: Path | None = None  # TLS client certificate (PEM)
    client_key: Path | None = None  # its private key (PEM)
    ca_file: Path | None = None  # the CA bundle the source's certificate is checked against
    public_key: str = ""  # base64 Ed25519: manifests must then be signed
    list_name: str = field(default="national", name="list")  # the list it updates: national or tenant:NAME
    region: str = ""  # for numbers not in +E.164 form; empty: the [national] region
    interval_s: Annotated[int, Meta(ge=10)] = 3600  # between two periodic syncs, seconds
    # a snapshot that shrinks the list by more than this is refused
    max_shrink_percent: Annotated[int, Meta(ge=0, le=100)] = 5
    workdir: Path = Path("dncgate-sync")  # downloads and sync state
    outbox: Path | None = None  # registrations queue (SQLite file); pushed upstream when set
    # Run each periodic sync in a child process, so parsing and sorting a large snapshot never
    # holds the event loop (and the calls waiting on it) of the serving process.
    isolate: bool = True
    publish_dir: Path | None = None  # republish what was applied, for resellers (see [feed])
    # A reseller syncing from its carrier's feed: the tenant here the carrier's enforcement standings
    # (its restricted and suspended originators of the carrier's tenant named like this reseller's
    # feed token) are applied to after each sync; empty: the standings are not fetched.
    standings_tenant: str = ""

    @property
    def max_shrink(self) -> float:
        return self.max_shrink_percent / 100


class FeedSettings(Table, frozen=True):
    """``[feed]``: serve ``sync.publish_dir`` to resellers holding a token ("name:token" entries)."""

    enabled: bool = False  # serve the feed from serve
    host: str = LOOPBACK_HOST  # the address it listens on
    port: Port = 9465  # the TCP port it listens on
    tokens: Texts = ()  # "name:token" entries, one per reseller
    max_connections: Connections = 64  # connections open at once, as [http]'s: beyond, accepting pauses
    # A new connection's TLS handshake and first request head must be complete within this; seconds.
    header_timeout: HeaderTimeout = field(default=HEADER_TIMEOUT_S, name="header_timeout_s")
    # An idle connection is closed this long after its last response.
    keepalive_timeout: KeepaliveTimeout = field(default=KEEPALIVE_TIMEOUT_S, name="keepalive_timeout_s")


class HoursSettings(Table, frozen=True):
    """``[tenants.NAME.hours]``: the calling window in the callee's local time; ``enabled = false``: none."""

    enabled: bool = True  # false: marketing calls at any hour
    weekday: str = _window(_HOURS.weekday)  # HH:MM-HH:MM the callee's local time, or "closed"
    weekend: str = _window(_HOURS.weekend)  # on weekend_days
    holiday: str = _window(_HOURS.holiday)  # on the dates in holidays
    weekend_days: Texts = ("sat", "sun")  # mon..sun
    holidays: Texts = ()  # callee-local dates like 2026-10-01
    zone_overrides: dict[str, str | list[str]] = field(default_factory=dict)  # "+86991" = "Asia/Urumqi"


class TenantSettings(Table, frozen=True):
    """``[tenants.NAME]``: one tenant's dial plan and policy (``dncgate.model.TenantPolicy``)."""

    region: str = _POLICY.dial_plan.region  # ISO 3166 region the tenant's dialled digits are read in
    trunk_prefix: str = ""  # empty: the region's own, from phonenumbers' metadata
    international_prefixes: Texts = _POLICY.dial_plan.international_prefixes  # dialled before a country code
    technical_prefixes: Texts = _POLICY.dial_plan.technical_prefixes  # carrier-select digits, stripped
    short_numbers: Texts = ()  # dialled as they are, never a subscriber (12321)
    mode: Mode = _POLICY.mode  # enforce: the verdict is carried out; monitor: recorded, every call allowed
    policy: ListPolicy = _POLICY.list_policy  # opt-out: listed callees refused; opt-in: marketing needs consent
    default_purpose: Purpose = _POLICY.default_purpose  # when the switch sends no or an unknown purpose
    reject_sip_code: int = _POLICY.reject_sip_code  # one of 603, 607, 608
    check_failed_sip_code: int = _POLICY.check_failed_sip_code  # a call rejected because the check failed
    marketing_on_failure: FailureAction = _POLICY.marketing_on_failure  # a marketing call when the check fails
    service_on_failure: FailureAction = _POLICY.service_on_failure  # a service call when the check fails
    language: str = _POLICY.language  # the announcement's language unless the call names one
    announcement: str = _POLICY.announcement  # the prompt's name; placeholders {language}, {tenant}
    # a very large maximum age turns the staleness alarm off in practice
    max_list_age_days: Annotated[int, Meta(ge=1, le=999_999)] = _POLICY.max_list_age.days
    stale_action: StaleAction = _POLICY.stale_action  # alarm: log and alert; reject: marketing calls too
    # The lists a marketing call needs a live version of (else list_missing, whatever stale_action
    # says): "national" and/or "tenant:NAME", the tenant's own. A tenant using only its own list
    # names that one alone; an empty list needs none (an opt-in tenant, or prefix rules only).
    required_lists: Texts = _POLICY.required_lists
    hours: HoursSettings = field(default_factory=HoursSettings)
    enforcement: TenantEnforcementSettings = field(default_factory=TenantEnforcementSettings)


class AsteriskFeedSettings(Table, frozen=True):
    """``[ami]``: the Asterisk Manager call feed (``dncgate.feeds``). A key left out (None) keeps the
    feed's own default (``dncgate.ami.settings``)."""

    enabled: bool = False  # start the feed in serve
    host: str | None = None  # Asterisk's manager address
    port: int | None = None  # the manager port, 1-65535
    username: str = ""  # manager.conf's [user]; required when enabled
    secret: str = ""  # required when enabled
    # TCP connect and Login, seconds: 1.5-60
    connect_timeout: float | None = field(default=None, name="connect_timeout_s")
    keepalive: float | None = field(default=None, name="keepalive_s")  # a Ping after this many quiet seconds: 1-3600
    cdr_timezone: str | None = None  # the Asterisk host's zone (Cdr times carry none); default UTC

    def __repr__(self) -> str:  # never the secret
        return f"AsteriskFeedSettings(enabled={self.enabled}, host={self.host!r}, port={self.port})"


class FreeswitchFeedSettings(Table, frozen=True):
    """``[esl_feed]``: the FreeSWITCH inbound event-socket call feed (``dncgate.feeds``). A key left
    out (None) keeps the feed's own default (``dncgate.esl.inbound.InboundConfig``)."""

    enabled: bool = False  # start the feed in serve
    host: str | None = None  # FreeSWITCH's event socket address
    port: int | None = None  # the event socket port, 1-65535
    password: str | None = None  # event_socket.conf.xml's password
    # TCP connect and auth, seconds: 0.1-60
    connect_deadline: float | None = field(default=None, name="connect_deadline_s")
    # idle seconds allowed between two events: 1-3600
    silence_deadline: float | None = field(default=None, name="silence_deadline_s")

    def __repr__(self) -> str:  # never the password
        return f"FreeswitchFeedSettings(enabled={self.enabled}, host={self.host!r}, port={self.port})"
